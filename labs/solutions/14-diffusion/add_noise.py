def add_noise(x0, noise, alpha_bar):
    # The image keeps sqrt(alpha_bar) of itself and takes sqrt(1 - alpha_bar) of the noise: the
    # squares add up to 1, so a step's image has the spread of the noise once alpha_bar is near 0.
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
