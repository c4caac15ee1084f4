//! The validation document as PDF, without a browser or a font file at run time.
//!
//! The document is generated once, as HTML (`document.rs`); this module reads that HTML (only
//! the small set of tags the generator writes: headings, paragraphs, list items, tables, inline
//! `<b>`/`<code>`/`<span>`) into blocks and lays them out on A4 pages in Courier, one of the
//! fourteen fonts every PDF reader has, so nothing is embedded. A monospaced font keeps the
//! layout exact without font metrics: tables are aligned columns, and a table too wide for the
//! page is written as one `header: value` line per cell instead of being cut. Text outside
//! Latin-1 is written with ASCII stand-ins (`≥` as `>=`). The `<head>` (title, style) and any
//! `<svg>` are skipped: every chart of the document has its numbers in a table.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// One piece of the document, in reading order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Block {
    Heading(u8, String),
    Paragraph(String),
    Item(String),
    Table(Vec<Vec<String>>),
}

/// Reads the generator's HTML into blocks.
pub(crate) fn blocks(html: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut current: Option<Block> = None;
    let mut table: Option<Vec<Vec<String>>> = None;
    let mut skip = 0usize;
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        if skip == 0 {
            text.push_str(&rest[..lt]);
        }
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            break;
        };
        let tag = &after[..gt];
        rest = &after[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match (name.as_str(), closing) {
            ("head" | "svg" | "style" | "script", false) => skip += 1,
            ("head" | "svg" | "style" | "script", true) => skip = skip.saturating_sub(1),
            _ if skip > 0 => {}
            ("h1" | "h2" | "h3" | "h4", false) => {
                text.clear();
                current = Some(Block::Heading(name.as_bytes()[1] - b'0', String::new()));
            }
            ("p" | "li" | "dd" | "dt", false) => {
                text.clear();
                current = Some(if name == "li" {
                    Block::Item(String::new())
                } else {
                    Block::Paragraph(String::new())
                });
            }
            ("h1" | "h2" | "h3" | "h4" | "p" | "li" | "dd" | "dt", true) => {
                let t = clean(&text);
                text.clear();
                match current.take() {
                    Some(Block::Heading(level, _)) if !t.is_empty() => {
                        out.push(Block::Heading(level, t))
                    }
                    Some(Block::Item(_)) if !t.is_empty() => out.push(Block::Item(t)),
                    Some(_) if !t.is_empty() => out.push(Block::Paragraph(t)),
                    _ => {}
                }
            }
            ("table", false) => table = Some(Vec::new()),
            ("table", true) => {
                if let Some(rows) = table.take().filter(|r| !r.is_empty()) {
                    out.push(Block::Table(rows));
                }
            }
            ("tr", false) => {
                if let Some(rows) = table.as_mut() {
                    rows.push(Vec::new());
                }
            }
            ("td" | "th", false) => text.clear(),
            ("td" | "th", true) => {
                if let Some(row) = table.as_mut().and_then(|rows| rows.last_mut()) {
                    row.push(clean(&text));
                }
                text.clear();
            }
            ("br", _) => text.push(' '),
            _ => {}
        }
    }
    out
}

/// Decodes the entities the generator writes and collapses white space.
fn clean(raw: &str) -> String {
    let decoded = raw
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&ge;", "≥")
        .replace("&le;", "≤")
        .replace("&times;", "×")
        .replace("&mdash;", "—")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Latin-1 text for the standard font's encoding: ASCII stand-ins for the rest.
fn latin1(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for ch in text.chars() {
        let stand_in: &str = match ch {
            '≥' => ">=",
            '≤' => "<=",
            '≠' => "!=",
            '×' => "x",
            '−' | '–' | '—' => "-",
            '…' => "...",
            '‘' | '’' => "'",
            '“' | '”' => "\"",
            '→' => "->",
            '·' | '•' => "*",
            _ if ch.is_ascii() && !ch.is_ascii_control() => {
                out.push(ch as u8);
                continue;
            }
            _ => "?",
        };
        out.extend_from_slice(stand_in.as_bytes());
    }
    out
}

const PAGE: (f32, f32) = (595.0, 842.0);
const MARGIN: f32 = 50.0;
/// Courier's advance width, in ems.
const ADVANCE: f32 = 0.6;

/// Lines of at most `width` characters, broken at spaces (a longer word is split).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        while word.chars().count() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A line to draw: font (bold or not), size, indent in points, text.
struct Line {
    bold: bool,
    size: f32,
    indent: f32,
    text: String,
    /// Extra space before the line, in points.
    gap: f32,
}

fn chars_per_line(size: f32, indent: f32) -> usize {
    ((PAGE.0 - 2.0 * MARGIN - indent) / (size * ADVANCE)).floor() as usize
}

fn layout(blocks: &[Block]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut push = |bold: bool, size: f32, indent: f32, text: &str, gap: f32| {
        for (i, l) in wrap(text, chars_per_line(size, indent))
            .into_iter()
            .enumerate()
        {
            lines.push(Line {
                bold,
                size,
                indent,
                text: l,
                gap: if i == 0 { gap } else { 0.0 },
            });
        }
    };
    for block in blocks {
        match block {
            Block::Heading(level, t) => {
                let size = match level {
                    1 => 15.0,
                    2 => 12.0,
                    _ => 10.5,
                };
                push(true, size, 0.0, t, size);
            }
            Block::Paragraph(t) => push(false, 9.0, 0.0, t, 5.0),
            Block::Item(t) => push(false, 9.0, 12.0, &format!("- {t}"), 2.0),
            Block::Table(rows) => {
                let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
                let widths: Vec<usize> = (0..columns)
                    .map(|c| {
                        rows.iter()
                            .filter_map(|r| r.get(c))
                            .map(|s| s.chars().count())
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let total = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
                let size = 8.0;
                if total <= chars_per_line(size, 0.0) {
                    for (i, row) in rows.iter().enumerate() {
                        let cells: Vec<String> = row
                            .iter()
                            .zip(&widths)
                            .map(|(s, w)| format!("{s:<w$}"))
                            .collect();
                        let header = i == 0 && rows.len() > 1;
                        push(
                            header,
                            size,
                            0.0,
                            cells.join("  ").trim_end(),
                            if i == 0 { 5.0 } else { 0.0 },
                        );
                    }
                } else {
                    // Too wide for the page: each row as `header: value` pairs.
                    let header = &rows[0];
                    for (i, row) in rows.iter().enumerate().skip(1) {
                        let pairs: Vec<String> = row
                            .iter()
                            .enumerate()
                            .map(|(c, v)| match header.get(c) {
                                Some(h) => format!("{h}: {v}"),
                                None => v.clone(),
                            })
                            .collect();
                        push(
                            false,
                            size,
                            0.0,
                            &pairs.join("; "),
                            if i == 1 { 5.0 } else { 2.0 },
                        );
                    }
                }
            }
        }
    }
    lines
}

/// The blocks as a PDF of A4 pages, each with `footer` and its page number at the bottom.
pub(crate) fn render(blocks: &[Block], footer: &str) -> Vec<u8> {
    let lines = layout(blocks);
    // Lines per page: break when the next line does not fit above the bottom margin.
    let mut pages: Vec<Vec<(f32, &Line)>> = vec![Vec::new()];
    let mut y = PAGE.1 - MARGIN;
    for line in &lines {
        let step = line.size * 1.25 + line.gap;
        if y - step < MARGIN + 20.0 && !pages.last().is_some_and(Vec::is_empty) {
            pages.push(Vec::new());
            y = PAGE.1 - MARGIN;
        }
        y -= step;
        if let Some(page) = pages.last_mut() {
            page.push((y, line));
        }
    }
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let first = 5;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first + 2 * i as i32))
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(pages.len() as i32);
    pdf.type1_font(regular).base_font(Name(b"Courier"));
    pdf.type1_font(bold).base_font(Name(b"Courier-Bold"));
    let n = pages.len();
    for (i, lines) in pages.iter().enumerate() {
        let id = page_ids[i];
        let content_id = Ref::new(id.get() + 1);
        let mut page = pdf.page(id);
        page.media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1));
        page.parent(tree);
        page.contents(content_id);
        {
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(Name(b"F1"), regular);
            fonts.pair(Name(b"F2"), bold);
        }
        page.finish();
        let mut content = Content::new();
        for (y, line) in lines {
            content.begin_text();
            content.set_font(Name(if line.bold { b"F2" } else { b"F1" }), line.size);
            content.next_line(MARGIN + line.indent, *y);
            content.show(Str(&latin1(&line.text)));
            content.end_text();
        }
        let foot = format!("{footer} - page {} of {n}", i + 1);
        content.begin_text();
        content.set_font(Name(b"F1"), 7.0);
        content.next_line(MARGIN, MARGIN - 10.0);
        content.show(Str(&latin1(&foot)));
        content.end_text();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTML: &str = "<!doctype html><html><head><title>T</title><style>p{}</style></head>\
        <body><h1>Validation of <code>credit</code> v1</h1><p>Score &ge; cut-off &amp; more \
        <b>bold</b> text &lt;ok&gt;.</p><svg><text>chart label</text></svg>\
        <h2 id=\"x\">Performance</h2><table><tr><th>metric</th><th>value</th></tr>\
        <tr><td>AUC</td><td>0.78</td></tr></table><ul><li>one</li><li>two</li></ul></body></html>";

    #[test]
    fn reads_headings_paragraphs_tables_and_items_and_skips_head_and_charts() {
        let b = blocks(HTML);
        assert_eq!(
            b,
            vec![
                Block::Heading(1, "Validation of credit v1".into()),
                Block::Paragraph("Score ≥ cut-off & more bold text <ok>.".into()),
                Block::Heading(2, "Performance".into()),
                Block::Table(vec![
                    vec!["metric".into(), "value".into()],
                    vec!["AUC".into(), "0.78".into()]
                ]),
                Block::Item("one".into()),
                Block::Item("two".into()),
            ]
        );
    }

    #[test]
    fn wraps_at_spaces_and_splits_long_words() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), Vec::<String>::new());
        assert_eq!(latin1("x ≥ 0.8 × y — z"), b"x >= 0.8 x y - z");
    }

    #[test]
    fn renders_a_pdf_with_every_line_and_page_numbers() {
        let mut b = blocks(HTML);
        // Enough paragraphs for a second page.
        for i in 0..120 {
            b.push(Block::Paragraph(format!("paragraph number {i}")));
        }
        let wide: Vec<Vec<String>> = vec![
            (0..12).map(|c| format!("header_{c}")).collect(),
            (0..12).map(|c| format!("value_{c}")).collect(),
        ];
        b.push(Block::Table(wide));
        let pdf = render(&b, "credit v1");
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.trim_end().ends_with("%%EOF"));
        let pages: usize = text
            .split("/Count ")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        // 120 paragraphs of 16.25 pt on 722 pt of page: three pages.
        assert_eq!(pages, 3);
        assert!(text.contains("(Validation of credit v1) Tj"));
        assert!(text.contains("(paragraph number 119) Tj"));
        assert!(text.contains("(credit v1 - page 3 of 3) Tj"));
        // The wide table as `header: value` pairs.
        assert!(text.contains("header_0: value_0; header_1: value_1"));
    }
}
