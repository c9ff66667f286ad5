def reparameterise(mu, logvar, eps):
    # The spread is exp(0.5 * logvar) (logvar is the log of the variance, the spread's square).
    # The randomness is in eps alone, drawn outside: z is a plain function of mu and logvar, so
    # the gradient of the loss flows back through it to the encoder.
    return mu + (0.5 * logvar).exp() * eps
