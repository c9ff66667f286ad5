import torch
import torch.nn.functional as F


def generator_loss(discriminator, fake):
    # The fakes labelled real (1), not detached: the gradient runs back through the discriminator
    # into the generator, and says how to change its images so that they pass for real ones.
    scores = discriminator(fake)
    return F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores))
