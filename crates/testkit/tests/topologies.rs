//! The harness itself, on the backend `REDKIT_BACKEND` names (process by default).

use std::time::{Duration, Instant};

use testkit::{Kind, Spec, Topology};

fn start(kind: Kind) -> Topology {
    let t0 = Instant::now();
    let topo = Topology::start(Spec::from_env(kind).expect("valid REDKIT_BACKEND"))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{kind} ready in {:?}: {}", t0.elapsed(), topo.url());
    topo
}

#[test]
fn standalone_starts_answers_and_is_removed_on_drop() {
    let topo = start(Kind::Standalone);
    let node = &topo.nodes()[0];
    assert_eq!(
        node.cmd(&["SET", "k", "v"]).expect("SET").text().as_deref(),
        Some("OK")
    );
    let dir = topo.dir().to_path_buf();
    assert!(
        dir.join("standalone/log").exists(),
        "logs are kept in the node dir"
    );
    let addr = node.addr;
    let container = node.container_name().map(str::to_string);
    drop(topo);
    assert!(!dir.exists(), "run dir removed");
    match container {
        // Never probe a removed container's address: its network is gone too.
        Some(name) => {
            let out = std::process::Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("name={name}")])
                .output()
                .expect("docker ps");
            assert!(out.stdout.is_empty(), "container {name} removed");
        }
        None => assert!(
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
            "server stopped"
        ),
    }
}

#[test]
fn sentinel_topology_has_quorum_and_fails_over_on_request() {
    let topo = start(Kind::Sentinel);
    assert_eq!(topo.sentinels().count(), 3);
    assert_eq!(topo.data_nodes().count(), 3);
    let primary = topo.current_primary().expect("primary");
    assert_eq!(topo.replicas_of(primary).len(), 2);
    let took = topo
        .sentinel_failover(Duration::from_secs(30))
        .expect("failover");
    let new_primary = topo.current_primary().expect("new primary");
    assert_ne!(new_primary.name, primary.name);
    eprintln!("SENTINEL FAILOVER took {took:?}");
}

#[test]
fn cluster_has_three_primaries_each_with_a_replica_and_survives_a_kill() {
    let topo = start(Kind::Cluster);
    let primaries = topo.primaries().expect("primaries");
    assert_eq!(primaries.len(), 3);
    for p in &primaries {
        assert_eq!(topo.replicas_of(p).len(), 1, "{} has one replica", p.name);
    }
    let victim = topo.primary_for_key("some-key").expect("owner");
    let old = victim.addr;
    topo.kill(victim).expect("kill -9");
    let took = topo
        .wait_for_slot_takeover(old, Duration::from_secs(30))
        .expect("takeover");
    eprintln!("cluster promotion after kill -9 took {took:?}");
    assert_ne!(
        topo.primary_for_key("some-key").expect("new owner").addr,
        old
    );
    topo.restart(topo.node(&victim.name).expect("node"))
        .expect("restart");
}

#[test]
fn auth_is_required_when_configured() {
    let topo = Topology::start(
        Spec::from_env(Kind::Standalone)
            .expect("backend")
            .auth(Some("app"), "s3cret-pw"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(topo.url().contains("app:s3cret-pw@"));
    let node = &topo.nodes()[0];
    node.cmd(&["PING"]).expect("authenticated PING");
    let mut anon =
        testkit::resp::Conn::connect(node.addr, Duration::from_secs(1), None).expect("connect");
    let reply = anon.cmd(&["PING"]).expect("reply");
    assert!(
        matches!(reply, testkit::resp::Reply::Error(ref e) if e.starts_with("NOAUTH")),
        "{reply:?}"
    );
}

#[test]
fn pause_and_resume_freeze_a_node() {
    let topo = start(Kind::Standalone);
    let node = &topo.nodes()[0];
    topo.pause(node).expect("pause");
    assert!(!node.is_up(), "a paused node does not answer");
    topo.resume(node).expect("resume");
    node.wait_up(Duration::from_secs(5)).expect("answers again");
}

/// A test process killed with SIGKILL cannot run destructors: its topology's watchdog must
/// still stop every server and remove every file.
#[test]
fn a_killed_owner_leaves_no_server_behind() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_redkit-hold"))
        .arg("sentinel")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn redkit-hold");
    let stdout = child.stdout.take().expect("stdout");
    let mut nodes = Vec::new();
    let mut dir = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("NODE ") {
            nodes.push(rest.to_string());
        } else if let Some(d) = line.strip_prefix("DIR ") {
            dir = Some(std::path::PathBuf::from(d));
        } else if line == "READY" {
            break;
        }
    }
    assert_eq!(nodes.len(), 6, "3 data nodes + 3 sentinels: {nodes:?}");
    let dir = dir.expect("run dir");
    assert!(dir.exists());
    let alive = |node: &str| -> bool {
        match node.split_once(' ') {
            Some(("pid", pid)) => std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false),
            Some(("container", name)) => Command::new("docker")
                .args(["ps", "-q", "--filter", &format!("name={name}")])
                .output()
                .map(|o| !o.stdout.is_empty())
                .unwrap_or(false),
            _ => false,
        }
    };
    assert!(
        nodes.iter().all(|n| alive(n)),
        "all nodes run before the kill"
    );

    child.kill().expect("SIGKILL the owner");
    child.wait().expect("reap");
    let start = std::time::Instant::now();
    while nodes.iter().any(|n| alive(n)) || dir.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still alive after the owner died: {:?}, dir exists: {}",
            nodes.iter().filter(|n| alive(n)).collect::<Vec<_>>(),
            dir.exists()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "watchdog cleaned up {} nodes in {:?}",
        nodes.len(),
        start.elapsed()
    );
}

/// TLS topologies: servers listen on TLS only (plaintext is refused), replicas and the
/// cluster bus use TLS, and every fault keeps working.
#[test]
fn tls_topologies_serve_tls_only_and_keep_their_faults() {
    use testkit::{ClientAuth, TlsSpec};
    for kind in [Kind::Sentinel, Kind::Cluster] {
        let t0 = Instant::now();
        let topo = Topology::start(
            Spec::from_env(kind)
                .expect("backend")
                .tls(TlsSpec::mutual())
                .auth(Some("admin"), "admin-pw")
                .user("app", "app-pw", "~app:* -@all +get"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("TLS {kind} ready in {:?}", t0.elapsed());
        assert!(topo.url().starts_with("rediss"), "{}", topo.url());
        assert!(topo.url().contains("tls_ca="), "{}", topo.url());
        for n in topo.nodes() {
            // The harness speaks TLS; a plaintext PING gets no reply.
            let mut plain =
                testkit::resp::Conn::connect(n.addr, Duration::from_secs(1), None).expect("tcp");
            assert!(
                plain.cmd(&["PING"]).is_err(),
                "{} answers plaintext",
                n.name
            );
            assert!(n.is_up(), "{} answers over TLS", n.name);
        }
        for n in topo.data_nodes() {
            let cfg = n
                .cmd(&["CONFIG", "GET", "tls-auth-clients"])
                .expect("CONFIG GET");
            assert_eq!(
                cfg.items().get(1).and_then(|r| r.text()).as_deref(),
                Some("yes")
            );
        }
        assert_eq!(TlsSpec::mutual().client_auth, ClientAuth::Required);
        // Faults: pause / resume, kill / restart, and a failover.
        let victim = match kind {
            Kind::Sentinel => topo.current_primary().expect("primary"),
            _ => topo.primary_for_key("k").expect("owner"),
        };
        let (name, old) = (victim.name.clone(), victim.addr);
        topo.pause(victim).expect("pause");
        assert!(!victim.is_up());
        topo.resume(victim).expect("resume");
        victim
            .wait_up(Duration::from_secs(5))
            .expect("up after resume");
        topo.client_pause(victim, Duration::from_millis(200), true)
            .expect("CLIENT PAUSE");
        topo.kill(victim).expect("kill -9");
        match kind {
            Kind::Sentinel => {
                topo.wait_for_new_primary(old, Duration::from_secs(30))
                    .expect("promotion");
            }
            _ => {
                topo.wait_for_slot_takeover(old, Duration::from_secs(30))
                    .expect("takeover");
            }
        }
        topo.restart(topo.node(&name).expect("node"))
            .expect("restart");
        // The restarted node rejoins as a replica over TLS replication.
        let start = Instant::now();
        loop {
            let linked = topo
                .node(&name)
                .expect("node")
                .conn()
                .and_then(|mut c| c.info_field("replication", "master_link_status"))
                .ok()
                .flatten();
            if linked.as_deref() == Some("up") {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{name} never re-linked over TLS replication"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // ACL users from the spec survive the restart.
        let acl = topo
            .node(&name)
            .expect("node")
            .cmd(&["ACL", "LIST"])
            .expect("ACL LIST");
        assert!(
            acl.items()
                .iter()
                .any(|u| u.text().is_some_and(|t| t.starts_with("user app on"))),
            "{acl:?}"
        );
    }
}
