"""Does the paper's method get better with more images and a larger input? Scores against screenshots seen."""
