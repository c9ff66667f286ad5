"""The check of lab 07's exercise (07-char-lstm): drawing the next character at a temperature."""
import numbers

_LOGITS = (2.0, 1.0, 0.2, -1.0, 0.5)   # some negative, as a network's scores are
_DRAWS = 3000


def _expected(logits, temperature):
    import torch

    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(), len(logits)).double()
    return torch.softmax(logits.double() / temperature, 0)


def _draws(sample_next, logits, temperature, seed, count):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return [int(sample_next(logits, temperature, generator)) for _ in range(count)]


def check_sample_next(sample_next):
    """The student's sample_next(logits, temperature, generator) drawn 3,000 times at temperatures
    0.5 and 2 with a seeded generator (so the check is the same every time): the frequencies of the
    draws against softmax(logits / temperature), and against what each likely mistake draws from."""
    import torch
    import torch.nn.functional as F

    logits = torch.tensor(_LOGITS)
    try:
        got = sample_next(logits, 0.5, torch.Generator().manual_seed(0))
    except RuntimeError as error:
        if "probability" in str(error) or "multinomial" in str(error):
            return ("torch.multinomial refused the numbers it was given (scores can be negative): turn the "
                    "logits into probabilities first, F.softmax(logits / temperature, dim=-1)")
        raise
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        return "it returns a tensor: return the index as a Python int, torch.multinomial(...).item()"
    if not isinstance(got, numbers.Integral) or not 0 <= got < len(logits):
        return f"it returns {got!r}: return the index of the drawn character, an int from 0 to len(logits) - 1"
    if not torch.equal(logits, torch.tensor(_LOGITS)):
        return ("it changes the logits it was given (logits /= temperature works in place, on the model's own "
                "output): compute logits / temperature, a new tensor")

    for temperature in (0.5, 2.0):
        draws = _draws(sample_next, logits, temperature, 0, _DRAWS)
        if _draws(sample_next, logits, temperature, 0, 50) != draws[:50]:
            return ("the same seed gives different draws: pass the generator it was given to torch.multinomial "
                    "(generator=generator), so that a seed repeats a sample")
        seen = torch.bincount(torch.tensor(draws), minlength=len(logits)).double() / _DRAWS
        candidates = {
            None: _expected(logits, temperature),
            "it multiplies the logits by the temperature: divide them (logits / temperature), so that a "
            "temperature below 1 sharpens the distribution and one above 1 flattens it":
                _expected(logits, 1 / temperature),
            "the temperature has no effect: divide the logits by it before the softmax (dividing the "
            "probabilities after it only rescales them, and torch.multinomial normalises them again)":
                _expected(logits, 1.0),
            "it always returns the most likely character (argmax): draw at random from the probabilities, "
            "torch.multinomial(probabilities, 1, generator=generator)": _expected(logits, 0),
            "every character is drawn equally often: draw from softmax(logits / temperature), not uniformly":
                torch.full((len(logits),), 1 / len(logits), dtype=torch.double),
        }
        distance = {said: 0.5 * float((seen - p).abs().sum()) for said, p in candidates.items()}
        nearest = min(distance, key=distance.get)
        if nearest is not None and distance[nearest] < 0.05:
            return nearest
        if nearest is not None or distance[None] > 0.05:
            wanted = ", ".join(f"{p:.2f}" for p in candidates[None])
            found = ", ".join(f"{p:.2f}" for p in seen)
            return (f"at temperature {temperature} its draws come out with frequencies {found}, not those of "
                    f"softmax(logits / temperature), {wanted}")

    try:
        greedy = [sample_next(logits, 0, torch.Generator().manual_seed(seed)) for seed in range(5)]
    except (ZeroDivisionError, RuntimeError):
        greedy = None
    if greedy != [int(F.softmax(logits, 0).argmax())] * 5:
        return ("at temperature 0 (the greedy limit) it must return the most likely character, "
                "int(logits.argmax()), every time: dividing by 0 gives no distribution to draw from")
    return None
