def kl_divergence(mu, logvar):
    # KL(N(mu, sigma^2) || N(0, 1)) of one number is -0.5 * (1 + log sigma^2 - mu^2 - sigma^2):
    # 0 when mu = 0 and sigma = 1, more the further the code's distribution is from N(0, 1).
    # A code's KL is the sum over its numbers (dim=1); the loss takes the mean over the batch.
    return (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(dim=1).mean()
