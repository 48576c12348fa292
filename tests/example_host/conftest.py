"""An example host application's test configuration: all it takes to use fairproc's kit.

Installing fairproc registers its pytest plugin, so the fixtures ``fairproc_policy``,
``fairproc_clock`` and ``fairproc_engine`` and the markers ``fairproc_policy`` and
``fairproc_now`` need no import and no configuration. The one line below makes every scenario
file under this folder a test item on a plain ``pytest`` run; without it, scenario files are
collected only from paths named on the command line (``pytest scenarios``) or listed in the
``fairproc_scenarios`` ini option.
"""

from fairproc.testing.plugin import collect_scenario_files as pytest_collect_file

__all__ = ["pytest_collect_file"]
