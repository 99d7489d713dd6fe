"""Turn a host into a public Jupyter service, from the site spec in group_data/.

    pyinfra inventory/<site>.py deploy.py

Thin on purpose: validate the spec (nothing runs on any host if it is invalid), read the
platform facts, then call one deploy per component, in order.
"""

from pyinfra import host

from operations.ddns import deploy_ddns
from operations.firewall import deploy_firewall
from operations.hub import deploy_hub
from operations.network import deploy_network
from operations.notebook import deploy_notebook
from operations.notes import deploy_notes
from operations.platforms import get_platform
from operations.proxy import deploy_proxy
from operations.python import deploy_python
from operations.site import site_spec
from operations.tls import deploy_tls

spec = site_spec(host)
platform = get_platform(host)

deploy_network(spec.network, platform)
deploy_python(spec.python, platform)
deploy_firewall(spec, platform)
deploy_tls(spec, platform)
if spec.mode == "hub":
    deploy_proxy(spec, platform)
    deploy_hub(spec, platform)
else:
    deploy_notebook(spec, platform)
deploy_ddns(spec.ddns, platform)
deploy_notes(spec, platform)
