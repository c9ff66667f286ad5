"""Usernames as dlab checks them: the rule said to a person, the bounds met before any work,
and look-alike names (Unicode confusables) reduced to one skeleton."""
import unicodedata

from confusable_homoglyphs.confusables import confusables_data


USERNAME_RULE = ("Choose a username of 1 to 32 letters, digits, dots, dashes or underscores that "
                 "starts with a letter or a digit (no spaces or slashes; capitals count as small letters; "
                 "in other scripts than Latin, at most about 20 letters).")
MAX_PASSWORD_BYTES = 72  # bcrypt's limit: a longer password would be an error, not a login
# Longer than any username can be (USERNAME_PATTERN: 32 characters): refused before any other work,
# so a megabyte "username" is neither normalized, nor looked up, nor remembered.
MAX_NAME_CHARS = 64


# --- Names that look alike ---------------------------------------------------------------------
# Unicode's confusables (the data of confusable-homoglyphs): each character joined with those that
# look like it, each group named by its smallest character. Cyrillic "а" and Latin "a" are one
# group, "l" and "1" another; distinct Latin letters and digits stay apart.
_looks_like = {}


def _group(c):
    while _looks_like.get(c, c) != c:
        c = _looks_like[c]
    return c


_pairs = [(c, h["c"]) for c, homoglyphs in confusables_data.items() for h in homoglyphs]
for _c, _h in [*_pairs, ("0", "o")]:  # the table pairs "0" with a capital "O"; names are small letters
    if len(_c) == 1 and len(_h) == 1:
        _a, _b = _group(_c), _group(_h)
        if _a != _b:
            _looks_like[max(_a, _b)] = min(_a, _b)
# Letters that look like two ("m" like "rn"; UTS #39's skeleton writes them so): each group's
# pair of small Latin letters, and two the table leaves out.
_AS_TWO = {"w": "vv", "d": "cl"}
for _c, _h in _pairs:
    if len(_c) == 1 and len(_h) > 1 and _h.isascii() and _h.isalpha() and _h.islower():
        _AS_TWO[_group(_c)] = min(_AS_TWO.get(_group(_c), _h), _h)
# Letters that show nothing (Hangul fillers): a name with one looks like the name without it.
INVISIBLE = {"\u115f", "\u1160", "\u3164", "\uffa0"}


def skeleton(name):
    """What a name looks like: its Unicode compatibility form (fullwidth "ａ" is "a"), small
    letters, each character as its group's, letters that show nothing left out, and letters that
    look like two as those two ("mary" is "rnary")."""
    groups = (_group(c) for c in unicodedata.normalize("NFKC", name).casefold() if c not in INVISIBLE)
    return "".join(_group(c) for g in groups for c in _AS_TWO.get(g, g))


# --- Bounds on what one request may leave behind ----------------------------------------------
