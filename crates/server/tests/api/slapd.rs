//! A real OpenLDAP directory for the directory logon tests: Debian's `slapd`, configured by a
//! slapd.conf this helper writes, with a CA and a server certificate made here (rcgen), the
//! test tree loaded by `slapadd`, listening on free loopback ports (LDAPS and LDAP with
//! StartTLS), killed on drop. slapd is required (`scripts/test` installs it): without it the
//! tests fail with the command that installs it rather than skipping.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";

/// The suffix of the test tree.
pub const SUFFIX: &str = "dc=example,dc=org";
/// The DN template of the test tree's people.
pub const PEOPLE: &str = "uid={user},ou=people,dc=example,dc=org";
/// The group the tests map to VM Restore Operator; alice is its member, bob is not.
pub const RESTORERS: &str = "cn=restorers,ou=groups,dc=example,dc=org";
/// Test users and their directory passwords.
pub const ALICE_PW: &str = "alice's secret";
pub const BOB_PW: &str = "bob's secret";

/// The test tree: two people, a group with one of them, and a third person whose uid looks
/// like a wildcard target (`alice2`) so an unescaped `*` would match more than one entry.
fn tree() -> String {
    format!(
        "dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Liddell
userPassword: {ALICE_PW}

dn: uid=alice2,ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: alice2
cn: Alice Two
sn: Two
userPassword: {ALICE_PW}

dn: uid=bob,ou=people,{SUFFIX}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Builder
userPassword: {BOB_PW}

dn: ou=groups,{SUFFIX}
objectClass: organizationalUnit
ou: groups

dn: {RESTORERS}
objectClass: groupOfNames
cn: restorers
member: uid=alice,ou=people,{SUFFIX}
"
    )
}

/// A running slapd and the files it was made from.
pub struct Slapd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `ldaps://127.0.0.1:PORT`
    pub ldaps_url: String,
    /// `ldap://127.0.0.1:PORT` (for StartTLS)
    pub ldap_url: String,
    ldaps_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is required for the directory logon tests: install it with \
         `scripts/test --install-only` (or `apt-get install slapd`)"
    );
}

impl Slapd {
    /// Write the configuration, certificates and tree, and start slapd.
    pub fn start() -> Slapd {
        require(SLAPD);
        require(SLAPADD);
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_certificates(d);
        std::fs::create_dir(d.join("db")).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {d}/ca.pem
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key
database mdb
maxsize 10485760
suffix \"{SUFFIX}\"
rootdn \"cn=admin,{SUFFIX}\"
rootpw admin-secret
directory {d}/db
access to attrs=userPassword by anonymous auth by self read by * none
access to * by * read
",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        std::fs::write(d.join("tree.ldif"), tree()).unwrap();
        let out = Command::new(SLAPADD)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("tree.ldif"))
            .output()
            .expect("run slapadd");
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut s = Slapd {
            dir,
            child: None,
            ldaps_url: String::new(),
            ldap_url: String::new(),
            ldaps_port: 0,
        };
        // A port found free may be taken by another test before slapd binds it: try others.
        let mut tries = 0;
        loop {
            let (ldaps_port, ldap_port) = (free_port(), free_port());
            s.ldaps_url = format!("ldaps://127.0.0.1:{ldaps_port}");
            s.ldap_url = format!("ldap://127.0.0.1:{ldap_port}");
            s.ldaps_port = ldaps_port;
            match s.try_run() {
                Ok(()) => return s,
                Err(e) if tries < 3 => {
                    tries += 1;
                    eprintln!("slapd did not start ({e}); trying other ports");
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// The CA certificate the server's certificate chains to.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA certificate the server's certificate does not chain to.
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// (Re)start slapd on the same ports and wait until it accepts connections.
    pub fn run(&mut self) {
        if let Err(e) = self.try_run() {
            panic!("{e}");
        }
    }

    fn try_run(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let child = Command::new(SLAPD)
            .arg("-h")
            .arg(format!("{}/ {}/", self.ldaps_url, self.ldap_url))
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-d")
            .arg("0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.ldaps_port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let mut err = String::new();
                if let Some(mut e) = self.child.take().and_then(|c| c.stderr) {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!("slapd exited ({status}): {err}"));
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err("slapd did not listen within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Change the tree with an LDIF of changes (`changetype: modify`): slapd is stopped,
    /// `slapmodify` applies them, slapd starts again on the same ports.
    pub fn modify(&mut self, ldif: &str) {
        self.stop();
        let d = self.dir.path();
        std::fs::write(d.join("change.ldif"), ldif).unwrap();
        let out = Command::new("/usr/sbin/slapmodify")
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("change.ldif"))
            .output()
            .expect("run slapmodify");
        assert!(
            out.status.success(),
            "slapmodify failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.run();
    }

    /// Stop slapd (its data stays for [`Slapd::run`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated second CA.
fn write_certificates(d: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_string());
        let cert = p.self_signed(&key).unwrap();
        (cert, key)
    };
    let (ca_cert, ca_key) = ca("emrest test directory CA");
    let (other, _) = ca("some other CA");
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1".to_string());
    let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
    std::fs::write(d.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(d.join("other-ca.pem"), other.pem()).unwrap();
    std::fs::write(d.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(d.join("server.key"), key.serialize_pem()).unwrap();
}
