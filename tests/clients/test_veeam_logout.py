"""The PyPI client `veeam` 0.1.5 (module `veeam.client`), unmodified. Its logout lists
`GET /api/logonSessions` and deletes `LogonSessions[0]`, assuming it is its own session (as do
`veeam-exporter`'s): emrest lists the caller's own sessions only, its current one first, so the
logout ends the client's session and no one else's."""

import base64

import requests
from veeam.client import VeeamClient

from conftest import ADMIN_PASSWORD


def logon(server) -> str:
    r = requests.post(f"{server.https}/api/sessionMngr/?v=latest",
                      auth=("admin", ADMIN_PASSWORD), verify=False)
    assert r.status_code == 201, r.text
    return r.headers["X-RestSvcSessionId"]


def alive(server, token: str) -> bool:
    r = requests.get(f"{server.https}/api/backupServers",
                     headers={"X-RestSvcSessionId": token}, verify=False)
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def test_logout_ends_the_clients_own_session_and_no_one_elses(server):
    # Another session of the same account, older than the client's: before, it came first.
    other = logon(server)
    # The client's own session argument; trust_env off so that a CA bundle named in the
    # environment does not override its verify=False for the self-signed certificate.
    session = requests.Session()
    session.trust_env = False
    client = VeeamClient(f"{server.https}/api", "admin", ADMIN_PASSWORD, verify=False,
                         session=session)
    own = client.session.headers["X-RestSvcSessionId"]
    newer = logon(server)
    listed = client.session.get(f"{server.https}/api/logonSessions").json()["LogonSessions"]
    own_id = base64.b64decode(own).decode()
    assert listed[0]["SessionId"] == own_id
    # Only this account's sessions: another account's SessionId would be its token.
    assert {s["UserName"] for s in listed} == {"admin"}
    client.logout()
    assert not alive(server, own)
    assert alive(server, other)
    assert alive(server, newer)

