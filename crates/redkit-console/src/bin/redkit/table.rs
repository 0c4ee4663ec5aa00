//! Plain aligned tables for the terminal.

/// Prints `rows` under `headers`, each column as wide as its widest cell; numeric columns
/// (every cell a number or `-`) are right-aligned.
pub(crate) fn print(headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", render(headers, rows));
}

pub(crate) fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cols = headers.len();
    let mut width: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    let mut numeric = vec![true; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
            if !(cell == "-" || cell.parse::<f64>().is_ok())
                && let Some(n) = numeric.get_mut(i)
            {
                *n = false;
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = width.get(i).copied().unwrap_or(0);
            let pad = w.saturating_sub(c.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if numeric.get(i).copied().unwrap_or(false) {
                out.push_str(&" ".repeat(pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `key: value` lines.
pub(crate) fn pairs(items: &[(&str, String)]) {
    let w = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in items {
        println!("{k:<w$}  {v}");
    }
}
