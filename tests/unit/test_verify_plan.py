"""The verify plan the deploy writes is the converged site's: a run that removes something the
spec dropped writes the same plan as the run after it (else that second run would change)."""

from __future__ import annotations

from operations.notebook import CONFIG_ROOT
from operations.order import COMPONENTS
from operations.site import site_items, verify_plan
from tests.support import make_site

SITE = {"mode": "notebook", "tls": {"type": "self-signed"}, "notebook": {"instances": [
    {"name": "lab-a", "user": "alice", "port": 8888, "password": "pw-0123456789"}]}}


def test_a_removal_run_writes_the_plan_of_the_converged_site():
    converged = make_site(SITE)
    removing = make_site(SITE, facts={"globs": {f"{CONFIG_ROOT}/*/": [
        f"{CONFIG_ROOT}/lab-a/", f"{CONFIG_ROOT}/lab-b/"]}})
    # The removal run has more to do ...
    assert len(site_items(removing, COMPONENTS)) > len(site_items(converged, COMPONENTS))
    # ... but writes the same plan.
    assert verify_plan(removing, COMPONENTS) == verify_plan(converged, COMPONENTS)
