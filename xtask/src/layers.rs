//! `cargo xtask layers`: the modules of each library crate must import one another as a tree
//! (no module imports one that imports it back, directly or through others), and no source
//! file may grow past [`MAX_LINES`].
//!
//! An import is any path that names another module of the same crate: `use crate::a::B`,
//! `crate::a::f()`, `super::b::C`, `self::c::D`, or `c::D` where `c` is a child module. A path
//! that names an item re-exported by the crate root (`crate::Error`) is an import of the root,
//! so shared items must live in (and be imported from) the module that defines them. Inline
//! `mod tests { use super::*; }` blocks belong to their file's module. Binaries (`src/bin`)
//! are crates of their own and are not checked for cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// No Rust source file under `crates/*/src` may be longer than this (tests included).
pub(crate) const MAX_LINES: usize = 800;

/// A module path inside one crate: `[]` is the crate root.
type ModPath = Vec<String>;

fn display(m: &[String]) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        format!("crate::{}", m.join("::"))
    }
}

/// The module a source file defines, from its path under `src/`.
fn module_of(rel: &Path) -> Option<ModPath> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let file = parts.pop()?;
    let stem = file.strip_suffix(".rs")?;
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    match stem {
        "lib" | "main" if parts.is_empty() => {}
        "mod" => {}
        s => parts.push(s.to_string()),
    }
    Some(parts)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Source text without comments, string and char literals (replaced by spaces), so that
/// paths in docs or messages are not taken for imports.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !is_ident(b[i - 1]))
        {
            // Raw string r"..." / r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push(' ');
            i = j;
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), or a lifetime / label ('a).
            let rest = &b[i + 1..];
            let close = if rest.first() == Some(&b'\\') {
                rest.iter().skip(1).position(|&x| x == b'\'').map(|p| p + 2)
            } else if rest.len() >= 2 && rest[1] == b'\'' {
                Some(1)
            } else {
                // Multi-byte UTF-8 char literal.
                let s = std::str::from_utf8(&rest[..rest.len().min(6)]).unwrap_or("");
                s.chars()
                    .next()
                    .filter(|ch| ch.len_utf8() > 1)
                    .and_then(|ch| (rest.get(ch.len_utf8()) == Some(&b'\'')).then(|| ch.len_utf8()))
            };
            match close {
                Some(n) => {
                    out.push(' ');
                    i += n + 2;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            // Copy one UTF-8 character.
            let ch_len = utf8_len(c);
            out.push_str(std::str::from_utf8(&b[i..i + ch_len]).unwrap_or(" "));
            i += ch_len;
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Star,
    Other(char),
}

fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_ident(c) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            out.push((Tok::Ident(code[start..i].to_string()), start));
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push((Tok::Colons, i));
            i += 2;
        } else {
            let t = match c {
                b'{' => Tok::Open,
                b'}' => Tok::Close,
                b',' => Tok::Comma,
                b'*' => Tok::Star,
                c if c.is_ascii_whitespace() => {
                    i += 1;
                    continue;
                }
                c => Tok::Other(c as char),
            };
            out.push((t, i));
            i += utf8_len(c);
        }
    }
    out
}

/// Byte ranges of inline `mod name { ... }` blocks (their `super` is the file's module).
fn inline_mods(toks: &[(Tok, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for w in 0..toks.len() {
        if toks[w].0 == Tok::Ident("mod".into())
            && matches!(toks.get(w + 1), Some((Tok::Ident(_), _)))
            && matches!(toks.get(w + 2), Some((Tok::Open, _)))
        {
            let mut depth = 0;
            for (t, pos) in &toks[w + 2..] {
                match t {
                    Tok::Open => depth += 1,
                    Tok::Close => {
                        depth -= 1;
                        if depth == 0 {
                            out.push((toks[w + 2].1, *pos));
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// Every path that starts at token `i` (`a::b::{c, d::e}`), as lists of segments.
fn paths_at(toks: &[(Tok, usize)], i: usize) -> Vec<Vec<String>> {
    fn tree(
        toks: &[(Tok, usize)],
        mut i: usize,
        prefix: Vec<String>,
        out: &mut Vec<Vec<String>>,
    ) -> usize {
        let mut path = prefix;
        loop {
            match toks.get(i).map(|t| &t.0) {
                Some(Tok::Ident(s)) => {
                    path.push(s.clone());
                    i += 1;
                    if toks.get(i).map(|t| &t.0) == Some(&Tok::Colons) {
                        i += 1;
                        continue;
                    }
                    out.push(path);
                    return i;
                }
                Some(Tok::Open) => {
                    i += 1;
                    loop {
                        match toks.get(i).map(|t| &t.0) {
                            Some(Tok::Close) => return i + 1,
                            Some(Tok::Comma) => i += 1,
                            Some(Tok::Star) => {
                                out.push(path.clone());
                                i += 1;
                            }
                            Some(Tok::Ident(_)) | Some(Tok::Open) => {
                                i = tree(toks, i, path.clone(), out);
                                // `x as y`
                                if toks.get(i).map(|t| &t.0) == Some(&Tok::Ident("as".into())) {
                                    i += 2;
                                }
                            }
                            None => return i,
                            Some(_) => i += 1,
                        }
                    }
                }
                Some(Tok::Star) => {
                    out.push(path);
                    return i + 1;
                }
                _ => {
                    out.push(path);
                    return i;
                }
            }
        }
    }
    let mut out = Vec::new();
    tree(toks, i, Vec::new(), &mut out);
    out
}

/// The modules a file imports (resolved against the crate's known modules).
fn imports(module: &ModPath, src: &str, known: &BTreeSet<ModPath>) -> BTreeSet<ModPath> {
    let code = code_only(src);
    let toks = tokens(&code);
    let inline = inline_mods(&toks);
    let children: BTreeSet<String> = known
        .iter()
        .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
        .filter_map(|m| m.last().cloned())
        .collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < toks.len() {
        let (t, pos) = &toks[i];
        let preceded_by_path = i > 0 && toks[i - 1].0 == Tok::Colons;
        let followed_by_path = toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Colons);
        let Tok::Ident(name) = t else {
            i += 1;
            continue;
        };
        if preceded_by_path || !followed_by_path {
            i += 1;
            continue;
        }
        // The module this path is relative to, and the segments after the first.
        let in_inline = inline.iter().any(|(a, b)| pos > a && pos < b);
        let base: Option<ModPath> = match name.as_str() {
            "crate" => Some(Vec::new()),
            "super" if in_inline => Some(module.clone()),
            "super" => module.split_last().map(|(_, p)| p.to_vec()),
            "self" => Some(module.clone()),
            child if children.contains(child) => {
                let mut m = module.clone();
                m.push(child.to_string());
                Some(m)
            }
            _ => None,
        };
        let Some(base) = base else {
            i += 1;
            continue;
        };
        for rest in paths_at(&toks, i + 2) {
            let mut full = base.clone();
            let mut rest = rest.into_iter();
            // `super::super::x`
            let mut segs: Vec<String> = Vec::new();
            for s in rest.by_ref() {
                if s == "super" && segs.is_empty() {
                    full.pop();
                } else {
                    segs.push(s);
                }
            }
            full.extend(segs);
            // The longest known module prefix is what the path imports.
            let target = (0..=full.len())
                .rev()
                .map(|n| full[..n].to_vec())
                .find(|m| known.contains(m))
                .unwrap_or_default();
            if &target != module {
                out.insert(target);
            }
        }
        i += 2;
    }
    out
}

/// Module cycles of one crate, each as the list of modules around it.
fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    // Tarjan's strongly connected components; a component of 2+ modules is a cycle.
    struct State<'a> {
        graph: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        next: usize,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(edges) = s.graph.get(v) {
            for w in edges {
                let Some((w, _)) = s.graph.get_key_value(w) else {
                    continue;
                };
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let lw = s.low[w];
                    let lv = s.low[v];
                    s.low.insert(v, lv.min(lw));
                } else if s.on_stack.contains(w) {
                    let iw = s.index[w];
                    let lv = s.low[v];
                    s.low.insert(v, lv.min(iw));
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Checks every crate under `crates/`; returns the problems found (empty: all good) and a
/// summary line per crate (with `edges`, followed by each module's imports).
pub(crate) fn check(root: &Path, edges: bool) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut summary = Vec::new();
    let mut crates: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    crates.sort();
    for krate in crates {
        let src = krate.join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let name = krate
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut modules: BTreeMap<ModPath, String> = BTreeMap::new();
        for f in &files {
            let text = fs::read_to_string(f).unwrap_or_default();
            let lines = text.lines().count();
            let shown = f.strip_prefix(root).unwrap_or(f).display().to_string();
            if lines > MAX_LINES {
                problems.push(format!("{shown}: {lines} lines (at most {MAX_LINES})"));
            }
            if let Some(m) = f.strip_prefix(&src).ok().and_then(module_of) {
                modules.insert(m, text);
            }
        }
        let known: BTreeSet<ModPath> = modules.keys().cloned().collect();
        let graph: BTreeMap<ModPath, BTreeSet<ModPath>> = modules
            .iter()
            .map(|(m, text)| (m.clone(), imports(m, text, &known)))
            .collect();
        let found = cycles(&graph);
        for comp in &found {
            let members: BTreeSet<&ModPath> = comp.iter().collect();
            let edges: Vec<String> = comp
                .iter()
                .flat_map(|m| {
                    graph[m]
                        .iter()
                        .filter(|t| members.contains(t))
                        .map(move |t| format!("{} -> {}", display(m), display(t)))
                })
                .collect();
            problems.push(format!(
                "{name}: modules import each other: {}",
                edges.join(", ")
            ));
        }
        let count: usize = graph.values().map(BTreeSet::len).sum();
        summary.push(format!(
            "{name}: {} modules, {count} imports between them, {} cycles",
            graph.len(),
            found.len()
        ));
        if edges {
            for (m, targets) in &graph {
                let list: Vec<String> = targets.iter().map(|t| display(t)).collect();
                summary.push(format!("  {} -> {}", display(m), list.join(", ")));
            }
        }
    }
    (problems, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(ms: &[&str]) -> BTreeSet<ModPath> {
        ms.iter()
            .map(|m| {
                if m.is_empty() {
                    Vec::new()
                } else {
                    m.split("::").map(String::from).collect()
                }
            })
            .collect()
    }

    fn m(s: &str) -> ModPath {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split("::").map(String::from).collect()
        }
    }

    #[test]
    fn imports_are_resolved_to_modules() {
        let k = known(&["", "a", "a::x", "b", "c"]);
        let src = r#"
            //! crate::c::Nothing in a doc comment
            use crate::{a::x::{self, Y}, b::Z as W};
            use super::super::c;
            fn f() { let s = "crate::c::Str"; crate::Error::new(); x::g(); }
            #[cfg(test)]
            mod tests { use super::*; }
        "#;
        let got = imports(&m("a::x"), src, &k);
        // super::super from a::x is the root; `c` after it is the module c.
        assert_eq!(got, [m(""), m("b"), m("c")].into_iter().collect());
        let got = imports(&m("a"), "pub use x::Thing; fn f() { self::x::g() }", &k);
        assert_eq!(got, [m("a::x")].into_iter().collect());
    }

    #[test]
    fn cycles_are_found_through_other_modules() {
        let mut g = BTreeMap::new();
        g.insert(m("a"), [m("b")].into_iter().collect());
        g.insert(m("b"), [m("c")].into_iter().collect());
        g.insert(m("c"), [m("a")].into_iter().collect());
        g.insert(m("d"), [m("a")].into_iter().collect());
        let found = cycles(&g);
        assert_eq!(found, vec![vec![m("a"), m("b"), m("c")]]);
        g.insert(m("c"), BTreeSet::new());
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn files_map_to_modules() {
        assert_eq!(module_of(Path::new("lib.rs")), Some(m("")));
        assert_eq!(module_of(Path::new("cache/mod.rs")), Some(m("cache")));
        assert_eq!(
            module_of(Path::new("cache/flight.rs")),
            Some(m("cache::flight"))
        );
        assert_eq!(module_of(Path::new("bin/tool.rs")), None);
    }
}
