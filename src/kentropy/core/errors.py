"""The one base of the library's user-facing errors: each message names the key, file, step or revision.

Catch ``KentropyError`` to handle any of them; each also keeps the builtin base it always had (ValueError,
LookupError, RuntimeError), so existing handlers still match.
"""


class KentropyError(Exception):
    """A problem the user can fix; the message says where (config key, file, step, revision) and what to do."""
