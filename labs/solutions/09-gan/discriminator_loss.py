import torch
import torch.nn.functional as F


def discriminator_loss(discriminator, real, fake, real_label):
    # Real images labelled real (softened to real_label), the generator's labelled fake (0). The
    # fakes are detached: this step trains the discriminator alone, so backward() stops at them.
    real_scores = discriminator(real)
    fake_scores = discriminator(fake.detach())
    return (F.binary_cross_entropy_with_logits(real_scores, torch.full_like(real_scores, real_label))
            + F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores)))
