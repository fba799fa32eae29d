"""Dark Studio entry point: the GUI by default, subcommands for headless work.

python main.py                       open the studio
python main.py PROJECT               open the studio on a project
python main.py train PROJECT [...]   train headless with a progress bar
python main.py --help                every subcommand
"""

import sys

from studio.cli import main

if __name__ == "__main__":
    sys.exit(main())
