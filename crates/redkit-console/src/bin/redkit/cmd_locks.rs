//! Lock and cache commands.

use redkit_console::{Console, Error};

use crate::Format;
use crate::table;

fn json<T: serde::Serialize>(v: &T) -> Result<(), Error> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Error::Unreadable(e.to_string()))?;
    println!("{s}");
    Ok(())
}

pub(crate) async fn locks(
    console: &Console,
    f: Format,
    namespace: Option<String>,
    _limit: usize,
) -> Result<(), Error> {
    let Some(_ns) = namespace else {
        let all = console.lock_namespaces().await?;
        if f == Format::Json {
            return json(&all);
        }
        let rows: Vec<Vec<String>> = all.iter().map(|n| vec![n.namespace.clone()]).collect();
        table::print(&["namespace"], &rows);
        return Ok(());
    };
    Ok(())
}

pub(crate) async fn lock(
    _console: &Console,
    _f: Format,
    _namespace: &str,
    _name: &str,
    _force_release: bool,
) -> Result<(), Error> {
    Ok(())
}

pub(crate) async fn caches(console: &Console, f: Format) -> Result<(), Error> {
    let all = console.caches().await?;
    if f == Format::Json {
        return json(&all);
    }
    let rows: Vec<Vec<String>> = all.iter().map(|c| vec![c.namespace.clone()]).collect();
    table::print(&["cache"], &rows);
    Ok(())
}

pub(crate) async fn cache(_console: &Console, _f: Format, _name: &str) -> Result<(), Error> {
    Ok(())
}
