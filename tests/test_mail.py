"""CORE-03: penalty notices reach the person by e-mail too, when SMTP is configured.

A minimal SMTP server on 127.0.0.1 receives what the portal sends through smtplib.
"""

from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.penalties import service
from portal.penalties.models import InboxMessage
from tests.penalty_support import cast, drafted, local


class _SMTPHandler(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line.strip().split(b" ")[0].upper()
            if verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.server.received.append(message_from_bytes(data))
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server(app):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config.update(PORTAL_SMTP_HOST="127.0.0.1", PORTAL_SMTP_PORT=server.server_address[1],
                      PORTAL_MAIL_FROM="portal@example.cn", PORTAL_BASE_URL="https://portal.example.cn")
    yield server
    app.config.update(PORTAL_SMTP_HOST=None, PORTAL_SMTP_PORT=25, PORTAL_MAIL_FROM=None,
                      PORTAL_BASE_URL=None)
    server.shutdown()
    server.server_close()


def test_core_03_published_notice_is_mailed_after_the_commit(app, tree, smtp_server):
    people = cast(tree)
    people["sam"].email = "sam@example.cn"
    people["sam"].locale = "en"
    db.session.commit()
    notice = drafted(tree, people["sam"])
    service.publish(notice, people["ida"], now=local(2026, 11, 10, 10))
    assert smtp_server.received == []  # nothing before the commit
    db.session.commit()
    [mail] = smtp_server.received
    assert mail["To"] == "sam@example.cn" and mail["From"] == "portal@example.cn"
    assert "TST-P01" in mail["Subject"]
    body = mail.get_payload(decode=True).decode()
    assert "2026-11-12 23:59:59" in body
    assert f"https://portal.example.cn/penalties/{notice.id}" in body


def test_core_03_rolled_back_change_mails_nothing_and_no_address_no_mail(app, tree, smtp_server):
    people = cast(tree)
    notice = drafted(tree, people["sam"])  # sam has no e-mail address
    service.publish(notice, people["ida"], now=local(2026, 11, 10, 10))
    db.session.commit()
    assert db.session.scalar(select(db.func.count()).select_from(InboxMessage)) == 1
    people["ivy"].email = "ivy@example.cn"
    db.session.commit()
    other = drafted(tree, people["ivy"], evidence="ticket 9")
    service.publish(other, people["ida"], now=local(2026, 11, 10, 10))
    db.session.rollback()
    db.session.commit()
    assert smtp_server.received == []


def test_core_03_unreachable_smtp_server_is_logged_not_raised(app, tree, caplog):
    app.config.update(PORTAL_SMTP_HOST="127.0.0.1", PORTAL_SMTP_PORT=1)  # nothing listens there
    try:
        people = cast(tree)
        people["sam"].email = "sam@example.cn"
        db.session.commit()
        notice = drafted(tree, people["sam"])
        service.publish(notice, people["ida"], now=local(2026, 11, 10, 10))
        db.session.commit()
    finally:
        app.config.update(PORTAL_SMTP_HOST=None, PORTAL_SMTP_PORT=25)
    assert notice.status == "published"
    assert "not sent" in caplog.text
