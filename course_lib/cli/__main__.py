"""``python -m course_lib.cli ...`` runs ``course-rl ...``.

Introduced in notebooks/12_trainers.ipynb.
"""

import sys

from course_lib.cli import main

sys.exit(main())
