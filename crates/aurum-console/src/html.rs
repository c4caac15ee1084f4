//! HTML building: the one escaping function, the page frame and small table helpers.
//!
//! Pages are assembled with `format!` and `push_str`. The rule that keeps that safe is simple
//! and local: every value that did not come from a literal in this crate goes through [`esc`]
//! (text and attribute values alike; attributes are always double-quoted), and URLs built from
//! names go through [`url_part`] first. Numbers are formatted by [`num`] and need no escaping.

use std::fmt::Write as _;

/// Escapes text for an HTML text node or a double-quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value (everything but unreserved characters).
pub fn url_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A number with `digits` decimals; `–` for a value that is not finite.
pub fn num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".to_string()
    }
}

/// [`num`] of an optional value; `–` when absent.
pub fn opt_num(x: Option<f64>, digits: usize) -> String {
    x.map(|x| num(x, digits)).unwrap_or_else(|| "–".into())
}

/// A share as a percentage with one decimal.
pub fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", x * 100.0)
    } else {
        "–".to_string()
    }
}

/// A UTC instant as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn ts(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A table: `head` are literal header labels, each row's cells are already-rendered HTML.
pub fn table(caption: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<div class=\"scroll\"><table>");
    let _ = write!(out, "<caption>{}</caption><thead><tr>", esc(caption));
    for h in head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\" class=\"empty\">None yet.</td></tr>",
            head.len().max(1)
        );
    }
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A definition list of `(label, rendered value)` pairs.
pub fn facts(items: &[(&str, String)]) -> String {
    let mut out = String::from("<dl class=\"facts\">");
    for (k, v) in items {
        let _ = write!(out, "<div><dt>{}</dt><dd>{v}</dd></div>", esc(k));
    }
    out.push_str("</dl>");
    out
}

/// A link whose target and text are escaped here.
pub fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), esc(text))
}

/// What the frame needs to know about the signed-in viewer.
pub struct Frame<'a> {
    /// The key's name, shown in the header.
    pub user: &'a str,
    /// The key's role.
    pub role: &'a str,
    /// The session's CSRF token, for the logout form.
    pub csrf: &'a str,
    /// Navigation entries the viewer may open: `(href, label)`.
    pub nav: Vec<(&'static str, &'static str)>,
    /// The nav entry to mark as current.
    pub current: &'static str,
}

/// The console's style sheet, inline in every page (no external requests). Colours are chosen
/// for WCAG AA contrast: on white, body text #1a1a1a (17:1), links #0b4f9c (8:1), muted #4a4a4a
/// (8.9:1), errors #a4000f (8:1); white on the #13294b header (14.5:1). Every focusable element
/// gets a visible focus ring (#b35c00, 4.7:1 on white; #ffd166 on the header).
pub const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#fff}
a{color:#0b4f9c}
a:hover{color:#062f5e}
:focus-visible{outline:3px solid #b35c00;outline-offset:2px}
header :focus-visible{outline-color:#ffd166}
.skip{position:absolute;left:-10000px;top:0;background:#fff;padding:.5rem 1rem;z-index:10}
.skip:focus{left:1rem;top:1rem}
header{background:#13294b;color:#fff;padding:.5rem 1.5rem;display:flex;flex-wrap:wrap;align-items:center;gap:1rem}
header .brand{font-weight:700;font-size:1.2rem;color:#fff;text-decoration:none}
header nav ul{list-style:none;display:flex;gap:1rem;margin:0;padding:0}
header nav a{color:#fff;padding:.25rem .5rem;border-radius:3px}
header nav a[aria-current="page"]{background:#fff;color:#13294b;font-weight:600}
header .who{margin-left:auto;display:flex;align-items:center;gap:.75rem}
header button{font:inherit;padding:.25rem .75rem;border:1px solid #fff;background:#13294b;color:#fff;border-radius:3px;cursor:pointer}
main{padding:1rem 1.5rem;max-width:80rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
h2{font-size:1.25rem;margin:1.5rem 0 .5rem;border-bottom:1px solid #c8c8c8}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.5rem 0 1rem;min-width:20rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border:1px solid #c8c8c8;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#eef1f5}
td.empty{color:#4a4a4a;font-style:italic}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:.5rem;margin:.5rem 0 1rem}
.facts div{border:1px solid #c8c8c8;border-radius:4px;padding:.4rem .6rem}
.facts dt{font-size:.85rem;color:#4a4a4a}
.facts dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums}
.muted{color:#4a4a4a}
.alert{border-left:5px solid #a4000f;background:#fdecee;padding:.5rem 1rem;margin:.5rem 0}
.note{border-left:5px solid #13294b;background:#eef1f5;padding:.5rem 1rem;margin:.5rem 0}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;border:1px solid #4a4a4a;font-size:.85rem}
.lvl-alert{background:#a4000f;color:#fff;border-color:#a4000f}
.lvl-watch{background:#ffe08a;color:#1a1a1a}
form.search{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end;margin:.5rem 0 1rem}
label{display:flex;flex-direction:column;font-size:.9rem;font-weight:600}
input{font:inherit;padding:.3rem .4rem;border:1px solid #6b6b6b;border-radius:3px;min-width:10rem}
input[aria-invalid="true"]{border:2px solid #a4000f}
.error{color:#a4000f;font-weight:600;font-size:.9rem}
button.primary{font:inherit;padding:.35rem 1rem;background:#0b4f9c;color:#fff;border:0;border-radius:3px;cursor:pointer}
progress{width:8rem;vertical-align:middle}
figure{margin:.5rem 0 1rem}
figcaption{font-size:.9rem;color:#4a4a4a}
svg text{font:12px system-ui,sans-serif;fill:#1a1a1a}
.login{max-width:28rem;margin:3rem auto}
.login input{width:100%}
"#;

/// A full page. `main` is rendered HTML; `frame` is `None` on the login and error pages of a
/// viewer who is not signed in. `refresh_s` adds a meta refresh (the jobs page while a job runs).
pub fn page(title: &str, frame: Option<&Frame<'_>>, main: &str, refresh_s: Option<u32>) -> String {
    let mut out = String::with_capacity(main.len() + CSS.len() + 2048);
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    if let Some(s) = refresh_s {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{s}\">");
    }
    let _ = write!(out, "<title>{} · aurum console</title>", esc(title));
    let _ = write!(out, "<style>{CSS}</style></head><body>");
    out.push_str("<a class=\"skip\" href=\"#main\">Skip to main content</a>");
    out.push_str("<header><a class=\"brand\" href=\"/ui/\">aurum console</a>");
    if let Some(f) = frame {
        out.push_str("<nav aria-label=\"Main\"><ul>");
        for (href, label) in &f.nav {
            let current = if *href == f.current {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(out, "<li><a href=\"{href}\"{current}>{label}</a></li>");
        }
        out.push_str("</ul></nav>");
        let _ = write!(
            out,
            "<div class=\"who\"><span>Signed in as <strong>{}</strong> ({})</span>\
             <form method=\"post\" action=\"/ui/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form></div>",
            esc(f.user),
            esc(f.role),
            esc(f.csrf)
        );
    }
    out.push_str("</header>");
    let _ = write!(
        out,
        "<main id=\"main\" tabindex=\"-1\">{main}</main></body></html>"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("plain-name_1.0"), "plain-name_1.0");
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(url_part("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(url_part("credit-pd_1.2"), "credit-pd_1.2");
    }

    #[test]
    fn numbers() {
        assert_eq!(num(0.123456, 4), "0.1235");
        assert_eq!(num(f64::NAN, 4), "–");
        assert_eq!(pct(0.5), "50.0%");
        assert_eq!(opt_num(None, 2), "–");
    }
}
