# The unavoidable installs of the default hub site, by hand in one shell script: what
# bench/bench_fleet.py --by-hand times on a bare lab host, to compare with the deploy's
# first converge. Same packages, pins and npm as the deploy; no configs, units, TLS or
# firewall (those cost the deploy little). Runs as root inside the host; $PROXY is the
# lab's package proxy.
set -eu
export http_proxy="$PROXY" https_proxy="$PROXY" HTTP_PROXY="$PROXY" HTTPS_PROXY="$PROXY"
export PIP_CERT=/etc/ssl/certs/ca-certificates.crt NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
export npm_config_cafile=/etc/ssl/certs/ca-certificates.crt DEBIAN_FRONTEND=noninteractive
apt-get -q update >/dev/null
apt-get -q -y install --no-install-recommends python3 python3-venv nodejs curl ca-certificates >/dev/null
python3 -m venv /opt/byhand-agent
/opt/byhand-agent/bin/pip install -q acme==5.9.0 josepy==2.2.0 cryptography==50.0.2
python3 -m venv /opt/byhand-hub
/opt/byhand-hub/bin/pip install -q jupyterhub==6.1.1 jupyterlab==4.6.6 jupyterhub-idle-culler==2.0.0
tmp=$(mktemp -d)
curl -fsSL -o "$tmp/npm.tgz" https://registry.npmjs.org/npm/-/npm-10.9.9.tgz
tar -xzf "$tmp/npm.tgz" -C "$tmp"
node "$tmp/package/bin/npm-cli.js" install --global --prefix /opt/byhand-chp --no-audit \
  --no-fund --no-update-notifier configurable-http-proxy@4.6.3 >/dev/null
rm -rf "$tmp"
