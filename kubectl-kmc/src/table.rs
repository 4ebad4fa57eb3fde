//! Left-aligned columns separated by three spaces, as kubectl prints them; no I/O.

use crate::text::escape;

/// Renders `header` and `rows`; every row has as many cells as the header. Every cell is
/// [`escape`]d: a label value from Prometheus can hold a newline or an escape sequence.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape(cell).into_owned()).collect())
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns() {
        let rows = vec![
            vec!["a".to_owned(), "long".to_owned(), "x".to_owned()],
            vec!["bbb".to_owned(), "".to_owned(), "y".to_owned()],
        ];
        assert_eq!(
            super::render(&["A", "B", "C"], &rows),
            "A     B      C\na     long   x\nbbb          y\n"
        );
    }

    #[test]
    fn escapes_every_cell() {
        let rows = vec![vec!["a\nb".to_owned(), "\u{1b}[2J".to_owned()]];
        assert_eq!(
            super::render(&["A", "B"], &rows),
            "A      B\na\\nb   \\u{1b}[2J\n"
        );
    }
}
