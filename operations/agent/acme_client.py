"""The ACME client: account, order, HTTP-01 / DNS-01 challenges, ARI (acme + josepy)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import random
import time

from .certs import ari_cert_id, key_pem, load_key, new_private_key
from .common import (
    USER_AGENT,
    AgentError,
    ConfigError,
    atomic_write,
    is_ip,
    iso,
    parse_iso,
    short_reason,
    utcnow,
    warn,
)
from .config import Config
from .dns import dns_provider
from .store import Store

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


class Acme:
    """A connected ACME client; creating one fetches the directory (the reachability check)."""

    def __init__(self, cfg: Config, store: Store):
        import josepy as jose
        import requests
        from acme import client, messages

        self.cfg = cfg
        self.store = store
        self.messages = messages
        self.url = cfg.acme["directory"]
        self.account_key = self._account_key(jose)
        verify = cfg.acme.get("ca_bundle") or True
        if verify is not True and not os.path.exists(verify):
            raise ConfigError(f"config: acme.ca_bundle {verify} does not exist")
        self.net = client.ClientNetwork(
            self.account_key, alg=jose.RS256, verify_ssl=verify, user_agent=USER_AGENT, timeout=30
        )
        try:
            directory = client.ClientV2.get_directory(self.url, self.net)
        except requests.exceptions.SSLError as e:
            raise AgentError(
                f"cannot verify the TLS certificate of ACME directory {self.url}: "
                f"{short_reason(e)} — if the CA uses a private root (test CA, TLS-inspecting "
                "proxy) set acme.ca_bundle"
            ) from None
        except requests.exceptions.RequestException as e:
            raise AgentError(
                f"cannot reach ACME directory {self.url}: {short_reason(e)} — check the URL, "
                "DNS and outgoing HTTPS (proxy settings) from this host"
            ) from None
        except (ValueError, KeyError, messages.Error) as e:
            raise AgentError(
                f"{self.url} did not answer with an ACME directory ({short_reason(e)}) — "
                "check acme.directory"
            ) from None
        self.client = client.ClientV2(directory, self.net)
        self.directory = directory

    def _account_key(self, jose):
        from cryptography.hazmat.primitives.asymmetric import rsa

        path = os.path.join(self.store.dir, "account.key")
        try:
            with open(path, "rb") as f:
                return jose.JWKRSA(key=load_key(f.read()))
        except FileNotFoundError:
            pass
        except (ValueError, TypeError):
            raise AgentError(
                f"ACME account key {path} is unreadable — move it away to create a new account"
            ) from None
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        atomic_write(path, key_pem(key), 0o600)
        return jose.JWKRSA(key=key)

    # -- ARI ----------------------------------------------------------------------------------

    def ari(self, leaf, old: dict) -> tuple[dt.datetime | None, dict]:
        """Renewal time from the CA's renewalInfo, reusing the cached answer until Retry-After."""
        try:
            base = self.directory["renewalInfo"]
        except (KeyError, AttributeError):
            return None, {}
        cid = ari_cert_id(leaf)
        now = utcnow()
        next_check = parse_iso(old.get("next_check")) if old.get("cert_id") == cid else None
        if next_check and now < next_check and old.get("chosen"):
            return parse_iso(old["chosen"]), old
        resp = self.net.get(base.rstrip("/") + "/" + cid, content_type="application/json")
        body = resp.json()
        window = body["suggestedWindow"]
        start, end = parse_iso(window["start"]), parse_iso(window["end"])
        if end < start:
            raise ValueError("suggestedWindow end before start")
        if (
            old.get("cert_id") == cid
            and old.get("start") == iso(start)
            and old.get("end") == iso(end)
            and old.get("chosen")
        ):
            chosen = parse_iso(old["chosen"])  # same window: keep the random pick stable
        else:
            # RFC 9773 4.2: a uniformly random point in the window spreads load on the CA.
            chosen = start + (end - start) * random.random()
        retry = resp.headers.get("Retry-After", "21600")
        try:
            retry_s = min(max(int(retry), 0), 86400)
        except ValueError:
            retry_s = 21600
        info = {
            "cert_id": cid,
            "start": iso(start),
            "end": iso(end),
            "chosen": iso(chosen),
            "next_check": iso(now + dt.timedelta(seconds=retry_s)),
        }
        if body.get("explanationURL"):
            info["explanation_url"] = body["explanationURL"]
        return chosen, info

    # -- issuance -----------------------------------------------------------------------------

    def register(self) -> None:
        from acme import errors

        m = self.messages
        email = self.cfg.acme.get("email")
        reg = (
            m.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
            if email
            else (m.NewRegistration.from_data(terms_of_service_agreed=True))
        )
        try:
            self.client.new_account(reg)
        except errors.ConflictError as e:
            # The key already has an account: RFC 8555 7.3.1 answers 200 + Location; use it.
            self.net.account = m.RegistrationResource(uri=e.location, body=m.Registration())
        except m.Error as e:
            code = getattr(e, "code", None)
            if code in ("invalidContact", "unsupportedContact"):
                raise AgentError(
                    f"the CA rejected the e-mail address {email!r}: {e.detail} — set acme.email "
                    "to a working address (or leave it out)"
                ) from None
            if code == "externalAccountRequired":
                raise AgentError(
                    f"{self.url} requires External Account Binding, which this agent does not "
                    "support — use a CA that does not (e.g. Let's Encrypt)"
                ) from None
            raise AgentError(f"ACME account registration failed: {acme_error(e)}") from None

    def issue(self, names: list[str]) -> tuple[bytes, bytes]:
        import requests

        try:
            return self._issue(names)
        except requests.exceptions.RequestException as e:
            raise AgentError(
                f"lost the connection to the CA ({self.url}) during issuance: {short_reason(e)} "
                "— try again; the old certificate is kept"
            ) from None

    def _issue(self, names: list[str]) -> tuple[bytes, bytes]:
        from acme import crypto_util, errors

        m = self.messages
        self.register()
        key = new_private_key(self.cfg.key_type)
        kpem = key_pem(key)
        dns_names = [n for n in names if not is_ip(n)]
        ips = [ipaddress.ip_address(n) for n in names if is_ip(n)]
        csr = crypto_util.make_csr(kpem, dns_names, ipaddrs=ips)
        try:
            profile = self.cfg.acme.get("profile")
            if profile:  # e.g. Let's Encrypt "shortlived" (required for IP-address certs)
                order = self.client.new_order(csr, profile=profile)
            else:
                order = self.client.new_order(csr)
        except m.Error as e:
            raise AgentError(
                f"the CA refused the order for {', '.join(names)}: {acme_error(e)}"
            ) from None
        timeout = float(self.cfg.acme.get("timeout", 120))
        # acme's poll deadlines are naive local times.
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
        kind = self.cfg.challenge
        try:
            if kind == "http-01":
                with self._http01(order):
                    order = self.client.poll_and_finalize(order, deadline)
            else:
                self._dns01(order, deadline)
                order = self.client.poll_and_finalize(order, deadline)
        except errors.ValidationError as e:
            raise AgentError(validation_message(e.failed_authzrs, kind, self.cfg)) from None
        except errors.TimeoutError:
            raise AgentError(
                f"the CA did not finish validation/issuance within {timeout:.0f} s — try again "
                "later or raise acme.timeout"
            ) from None
        except errors.IssuanceError as e:
            raise AgentError(f"the CA refused to issue: {acme_error(e.error)}") from None
        except m.Error as e:
            raise AgentError(f"ACME error during issuance: {acme_error(e)}") from None
        return order.fullchain_pem.encode(), kpem

    def _pending(self, order) -> list:
        return [a for a in order.authorizations if a.body.status != self.messages.STATUS_VALID]

    def _challenge(self, authzr, kind: str):
        for challb in authzr.body.challenges:
            if challb.chall.typ == kind:
                return challb
        offered = ", ".join(c.chall.typ for c in authzr.body.challenges)
        raise AgentError(
            f"the CA does not offer {kind} for {authzr.body.identifier.value} (offers: {offered}) "
            "— change acme.challenge"
        )

    @contextlib.contextmanager
    def _http01(self, order):
        base = os.path.join(self.cfg.webroot, ".well-known", "acme-challenge")
        os.makedirs(base, mode=0o755, exist_ok=True)
        written = []
        try:
            todo = []
            for authzr in self._pending(order):
                challb = self._challenge(authzr, "http-01")
                response, validation = challb.response_and_validation(self.account_key)
                token = challb.chall.encode("token")
                path = os.path.join(base, token)
                atomic_write(path, validation.encode(), 0o644)
                written.append(path)
                todo.append((challb, response))
            for challb, response in todo:
                self.client.answer_challenge(challb, response)
            yield
        finally:
            for path in written:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def _dns01(self, order, deadline: dt.datetime) -> None:
        """One authorization at a time: DuckDNS holds a single TXT value per account."""
        provider = dns_provider(self.cfg.acme.get("dns") or {})
        for authzr in self._pending(order):
            challb = self._challenge(authzr, "dns-01")
            domain = authzr.body.identifier.value
            handle = provider.set_txt(domain, challb.validation(self.account_key))
            try:
                if provider.propagation > 0:
                    time.sleep(provider.propagation)
                self.client.answer_challenge(challb, challb.response(self.account_key))
                self._wait_authz(authzr, deadline)
            finally:
                try:
                    provider.clear_txt(domain, handle)
                except AgentError as e:
                    warn(f"could not remove the _acme-challenge TXT record: {e}")

    def _wait_authz(self, authzr, deadline: dt.datetime) -> None:
        from acme import errors

        delay = 0.5
        while dt.datetime.now() < deadline:
            time.sleep(delay)
            authzr, _ = self.client.poll(authzr)
            status = authzr.body.status
            if status == self.messages.STATUS_VALID:
                return
            if status != self.messages.STATUS_PENDING:
                raise errors.ValidationError([authzr])
            delay = min(delay * 2, 5)
        raise errors.TimeoutError()

def acme_error(e) -> str:
    code = getattr(e, "code", None) or getattr(e, "typ", "")
    detail = getattr(e, "detail", None) or str(e)
    return f"{code}: {detail}" if code else detail

def validation_message(failed, kind: str, cfg: Config) -> str:
    parts = []
    for authzr in failed:
        ident = authzr.body.identifier.value
        err = next((c.error for c in authzr.body.challenges if c.error is not None), None)
        detail = getattr(err, "detail", None) or (str(err) if err else "no detail from the CA")
        token = ""
        for c in authzr.body.challenges:
            if c.chall.typ == "http-01":
                token = c.chall.encode("token")
        if kind == "http-01":
            host = f"[{ident}]" if ":" in ident else ident
            parts.append(
                f"ACME HTTP-01 validation failed for {ident}: the CA could not fetch "
                f"http://{host}{CHALLENGE_PREFIX}{token} ({detail}) — is port 80 open to the "
                "internet, forwarded to this host, and the port-80 responder (serve-http) running?"
            )
        else:
            provider = (cfg.acme.get("dns") or {}).get("provider", "dns")
            parts.append(
                f"ACME DNS-01 validation failed for {ident}: the CA did not see the expected TXT "
                f"record _acme-challenge.{ident} ({detail}) — check the {provider} settings "
                "(token, zone/subdomain) and raise acme.dns.propagation_seconds if DNS is slow"
            )
    return " | ".join(parts) or f"ACME {kind} validation failed"
