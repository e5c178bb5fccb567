"""Can a reader of the photo's pixels bring the visible sliders' values closer than the neutral face (issue 13)?"""
