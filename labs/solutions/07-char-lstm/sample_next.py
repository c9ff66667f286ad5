import torch
import torch.nn.functional as F


def sample_next(logits, temperature, generator):
    # Temperature 0 is the limit of ever sharper distributions: always the most likely character.
    if temperature == 0:
        return int(logits.argmax())
    # Divide the scores by the temperature, then make them probabilities (they sum to 1)...
    probabilities = F.softmax(logits / temperature, dim=-1)
    # ...and draw one index with them, from the generator given (a seed repeats the text).
    return torch.multinomial(probabilities, 1, generator=generator).item()
