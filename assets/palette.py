"""The one palette of Dark Studio: the stylesheet (dark.qss) uses these names as
``@name`` placeholders, the plots use them directly.

Near-black panels, one accent (a calm blue), colour-blind-safe series colours (Okabe-Ito),
and green/red for right/wrong always paired with a second cue (a mark and a text).
"""

BG = "#15171c"  # window
PANEL = "#1b1e24"  # panels, tables
PANEL_ALT = "#20242b"  # alternating rows, cards
RAISED = "#262a32"  # buttons, inputs
BORDER = "#2f343d"
BORDER_STRONG = "#3b414c"
TEXT = "#d7dae0"
TEXT_DIM = "#8b929e"
TEXT_FAINT = "#5d6470"
ACCENT = "#4c9aff"
ACCENT_DIM = "#2d5f9e"
ACCENT_TEXT = "#0d1117"
SELECTION = "#2a3f5f"

RIGHT = "#3fb68b"  # with a check mark
WRONG = "#e5534b"  # with a cross
WARN = "#d9a441"

# Okabe-Ito, readable for the common colour-vision deficiencies
SERIES = ["#56b4e9", "#e69f00", "#009e73", "#cc79a7", "#f0e442", "#0072b2", "#d55e00"]
TRAIN = SERIES[0]  # sky blue
VALID = SERIES[1]  # orange

PLOT_BG = "#16191e"
PLOT_FG = "#9aa1ad"
PLOT_GRID = "#252930"  # opaque: translucent grid lines cost ~3 ms per axis repaint

FONT_SIZE = 10  # points
MONO = "JetBrains Mono, DejaVu Sans Mono, Consolas, monospace"
SPACING = 8  # px, the grid every layout snaps to

COLORS = {k: v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str)}
