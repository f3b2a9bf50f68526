#!/usr/bin/python3
"""A local SMTP sink for the mail tests (aiosmtpd): MODE is plain, starttls
(STARTTLS required, then AUTH) or tls (implicit TLS, then AUTH). Each message
is written to OUTDIR/N.eml with the envelope and the authenticated user in
X-Sink-* lines first. Usage: smtp_sink.py MODE PORT OUTDIR [CERT KEY]"""
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(outdir, exist_ok=True)


class Sink:
    n = 0

    async def handle_DATA(self, server, session, envelope):
        Sink.n += 1
        user = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else "-"
        head = "X-Sink-From: %s\nX-Sink-To: %s\nX-Sink-User: %s\nX-Sink-TLS: %s\n" % (
            envelope.mail_from, ",".join(envelope.rcpt_tos), user,
            "yes" if session.ssl or server.transport.get_extra_info("ssl_object") else "no")
        tmp = os.path.join(outdir, ".%d.tmp" % Sink.n)
        with open(tmp, "wb") as f:
            f.write(head.encode() + envelope.content)
        os.rename(tmp, os.path.join(outdir, "%d.eml" % Sink.n))
        return "250 OK"


def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"hbmon" and data.password == b"s3cret"
    return AuthResult(success=ok, auth_data=data)


kw = dict(hostname="127.0.0.1", port=port, authenticator=auth)
if mode in ("starttls", "tls"):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    if mode == "starttls":
        kw.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
    else:
        kw.update(ssl_context=ctx, auth_require_tls=False)
else:
    kw.update(auth_require_tls=True)
c = Controller(Sink(), ready_timeout=20, **kw)
if mode == "tls":
    # The controller's self-check would speak plain SMTP to a TLS port.
    c._trigger_server = lambda: None
c.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    pass
