//! `redkit-hold <standalone|sentinel|cluster>`: starts a topology (backend from
//! `REDKIT_BACKEND`), prints `URL <url>` and one `NODE <pid-or-container>` line per node, then
//! `READY`, and holds it until stdin closes. Used to check that a killed owner leaves nothing
//! behind.

use std::io::{Read, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kind: testkit::Kind = std::env::args().nth(1).unwrap_or_default().parse()?;
    let topo = testkit::Topology::start(testkit::Spec::from_env(kind)?)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "URL {}", topo.url())?;
    for n in topo.nodes() {
        match (n.pid(), n.container_name()) {
            (Some(pid), _) => writeln!(out, "NODE pid {pid}")?,
            (_, Some(name)) => writeln!(out, "NODE container {name}")?,
            _ => {}
        }
    }
    writeln!(out, "DIR {}", topo.dir().display())?;
    writeln!(out, "READY")?;
    out.flush()?;
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    Ok(())
}
