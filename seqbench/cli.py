"""What the command lines (`seqbench.train`, `.sweep`, `.leaderboard`) share: bad input is one
line on stderr naming what is valid, exit status 2, and no traceback."""

from __future__ import annotations

import sys
from typing import Callable, NoReturn

from absl import flags


def fail(program: str, message: str) -> NoReturn:
    """Prints "`program`: error: `message`" on stderr and exits with status 2."""
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(2)


def flags_parser(program: str, values: flags.FlagValues = flags.FLAGS,
                 ) -> Callable[[list[str]], list[str]]:
    """absl's parser for `app.run(main, flags_parser=...)`, reporting an unknown flag or a bad
    value (the first line of absl's message) with `fail`."""

    def parse(argv: list[str]) -> list[str]:
        try:
            return values(argv)
        except flags.Error as e:
            fail(program, str(e).splitlines()[0])

    return parse
