"""The storage names under their first home, kept so that code written against
``fairproc.store`` goes on working: everything here lives in :mod:`fairproc.storage` (the
interface, values, codec, history, fallback, pseudonyms and registry), where new code should
import it from.
"""

from fairproc.storage import *  # noqa: F403
from fairproc.storage import __all__ as __all__
