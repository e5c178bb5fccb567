"""Can a reader of the photos pixels bring the visible sliders values closer than the neutral face (issue 13)?"""
