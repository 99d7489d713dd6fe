"""For the firewall rollback test: rules that shut SSH out, and no confirmation.

As if the deploy had lost the host right after applying a bad rule set (one that no check
caught): the rollback guard is armed, the rules are applied, and the confirm step never
comes. The guard's timer must put the previous rules back on its own.
"""

from pyinfra import host

from operations.firewall import BACKENDS, backend_for, guard
from operations.firewall.rules import build
from operations.platforms import get_platform
from operations.site import site_spec

spec = site_spec(host)
platform = get_platform(host)

# No confirmation: the stand-in for a controller that can no longer reach the host.
guard.confirm = lambda **kwargs: None
# build() without the lockout check that plan() applies: SSH only on the spec's ssh_ports.
BACKENDS[backend_for(spec, platform)].apply(build(spec, ssh_port=None), platform, spec.firewall)
