"""Dark Studio entry point: the GUI by default, subcommands for headless work.

python main.py                       open the studio
python main.py PROJECT               open the studio on a project
python main.py train PROJECT [...]   train headless with a progress bar
python main.py --help                every subcommand
"""

import os
import sys

from studio.cli import main

if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the reader went away (python main.py info P | head): quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
