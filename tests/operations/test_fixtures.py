"""Operations and facts against recorded facts/outputs of distros we cannot boot here.

pyinfra's own JSON fixture style, run by the `pyinfra-testing` package: every directory
`tests/operations/<module>.<operation>/` holds cases (args/kwargs, facts, expected commands,
noop_description) for `operations.<module>.<operation>`; `tests/operations/facts/
<module>.<Fact>/` holds command outputs and the parsed fact. CentOS 7 (iptables, firewalld)
and Ubuntu 16.04 (ufw) are covered this way.
"""

from pathlib import Path

from pyinfra_testing.facts import make_fact_tests
from pyinfra_testing.operations import make_operation_tests

HERE = Path(__file__).parent
FACTS = HERE / "facts"

for _dir in sorted(d for d in HERE.iterdir() if d.is_dir() and d != FACTS
                   and not d.name.startswith(("_", "."))):
    locals()[f"Test_{_dir.name}"] = make_operation_tests("operations", _dir.name, _dir)

for _dir in sorted(d for d in FACTS.iterdir() if d.is_dir()):
    locals()[f"TestFact_{_dir.name}"] = make_fact_tests("operations", _dir.name, _dir)
