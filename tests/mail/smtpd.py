"""A real SMTP server for seatkeeper's email tests: aiosmtpd on 127.0.0.1.

Every accepted message is written to OUT as <n>.eml plus <n>.json (envelope sender, recipients,
whether the session used TLS). Recipients whose local part starts with "reject" get a permanent
550, "defer" a transient 451. With --tls the server speaks STARTTLS (required) or implicit TLS
with a certificate from a throw-away CA, whose PEM it writes to --ca-out. Prints "ready" once
it accepts connections and serves until stdin closes or it is killed.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import sys
import threading
import time

from aiosmtpd.controller import Controller


def parse(raw):
    """The message as Python's own MIME parser reads it: headers, decoded parts, attachments."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = {"headers": {k: str(v) for k, v in msg.items()}, "text": None, "html": None, "attachments": []}
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_filename():
            out["attachments"].append({
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "content": part.get_content() if part.get_content_maintype() == "text" else None,
            })
        elif part.get_content_type() == "text/plain":
            out["text"] = part.get_content()
        elif part.get_content_type() == "text/html":
            out["html"] = part.get_content()
    return out


class Recorder:
    def __init__(self, out, delay):
        self.out = out
        self.delay = delay
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("defer"):
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        name = "%d-%d" % (time.time_ns(), os.getpid())
        meta = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
        }
        meta.update(parse(envelope.original_content))
        for ext, data in ((".eml", envelope.original_content), (".json", json.dumps(meta).encode())):
            tmp = os.path.join(self.out, "." + name + ext)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(self.out, name + ext))
        return "250 2.0.0 accepted"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--delay", type=float, default=0.0, help="seconds to wait before accepting DATA")
    p.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    p.add_argument("--ca-out", help="where to write the CA certificate (with --tls)")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    kwargs = {}
    if a.tls != "none":
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(a.ca_out)
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        if a.tls == "starttls":
            kwargs = {"tls_context": ctx, "require_starttls": True}
        else:
            kwargs = {"ssl_context": ctx}
    controller = Controller(
        Recorder(a.out, a.delay), hostname="127.0.0.1", port=a.port, **kwargs
    )
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
