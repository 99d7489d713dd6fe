"""For the firewall rollback test: rules that shut SSH out, and no confirmation.

As if the deploy had lost the host right after applying a bad rule set (one that no check
caught): the rollback guard is armed, the rules are applied, and the confirm step never
comes. The guard's timer must put the previous rules back on its own.
"""

from pyinfra import host

from operations import firewall
from operations.firewall import BACKENDS, backend_for, guard
from operations.firewall.rules import build
from operations.site import load_site

site = load_site(host, [firewall])

# No confirmation: the stand-in for a controller that can no longer reach the host.
guard.confirm = lambda **kwargs: None
# build() without the lockout check that plan() applies: SSH only on the spec's ssh_ports.
BACKENDS[backend_for(site.spec, site.platform)].apply(
    build(site.spec, ssh_port=None), site.platform, site.spec.firewall, site.over_ssh)
