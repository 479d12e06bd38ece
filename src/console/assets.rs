//! The console's stylesheet and script, embedded in the binary (no CDN, no build step).

pub const CSS: &str = r#"
:root { --fg:#1b1f24; --muted:#57606a; --bg:#fff; --line:#d0d7de; --accent:#0b5cad; --ok:#1a7f37; --warn:#9a6700; --bad:#b42318; --soft:#f6f8fa; }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
header.top { display:flex; flex-wrap:wrap; gap:.5rem 1.5rem; align-items:center; padding:.6rem 1rem; background:#0d1b2a; color:#fff; }
header.top a { color:#fff; text-decoration:none; }
header.top nav { display:flex; flex-wrap:wrap; gap:1rem; flex:1; }
header.top form { margin:0; }
.skip { position:absolute; left:-999px; } .skip:focus { left:1rem; top:1rem; background:#fff; color:#000; padding:.5rem; z-index:10; }
main { max-width: 70rem; margin: 0 auto; padding: 1rem; }
h1 { font-size:1.5rem; margin:.5rem 0 1rem; } h2 { font-size:1.15rem; margin:1.5rem 0 .5rem; }
.crumbs { font-size:.9rem; color:var(--muted); }
.card { border:1px solid var(--line); border-radius:8px; padding:1rem; margin:0 0 1rem; background:var(--bg); }
.grid { display:grid; gap:1rem; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); }
table { border-collapse: collapse; width:100%; font-size:.95rem; }
th, td { text-align:left; padding:.4rem .5rem; border-bottom:1px solid var(--line); vertical-align: top; }
th { background: var(--soft); }
.table-wrap { overflow-x:auto; }
label { display:block; font-weight:600; margin:.5rem 0 .2rem; }
input[type=text], input[type=number], input[type=password], input[type=search], input[type=email], input[type=url], select, textarea { font:inherit; padding:.4rem .5rem; border:1px solid #8c959f; border-radius:6px; width:100%; max-width:28rem; }
button, .button { font:inherit; padding:.4rem .8rem; border-radius:6px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; text-decoration:none; display:inline-block; }
button.secondary, .button.secondary { background:#fff; color:var(--accent); }
button.danger { background:var(--bad); border-color:var(--bad); }
form.inline { display:inline; margin:0; }
ul.activity { list-style:none; padding:0; } ul.activity li { padding:.35rem 0; border-bottom:1px solid #e5e7eb; } ul.activity time { color:#57606a; font-size:.85rem; margin-right:.4rem; } ul.activity details { display:inline-block; margin-left:.5rem; } ul.activity pre { white-space:pre-wrap; }
label.inline { display:inline-block; font-weight:normal; margin:.2rem 1rem .2rem 0; } fieldset { border:0; padding:0; margin:.5rem 0; }
.row { display:flex; flex-wrap:wrap; gap:.5rem; align-items:flex-end; }
.muted { color:var(--muted); } .small { font-size:.875rem; }
.badge { display:inline-block; padding:0 .45rem; border-radius:999px; font-size:.8rem; font-weight:600; border:1px solid currentColor; }
.badge.granted { color:var(--ok); } .badge.blocked { color:var(--bad); } .badge.releasing { color:var(--warn); } .badge.pending { color:var(--warn); } .badge.sent { color:var(--ok); } .badge.failed { color:var(--bad); }
.badge.group { color:var(--muted, #555); } details.limits { margin:.3rem 0 .6rem; } details.limits summary { cursor:pointer; font-size:.9rem; }
.notice { padding:.6rem .8rem; border-radius:6px; margin:0 0 1rem; border:1px solid; }
.notice.ok { background:#dafbe1; border-color:#4ac26b; } .notice.bad { background:#ffebe9; border-color:#ff8182; } .notice.warn { background:#fff8c5; border-color:#d4a72c; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:.9em; word-break: break-all; }
.secret { background: var(--soft); padding:.5rem; border-radius:6px; display:block; }
svg.gauge { display:block; width:100%; height:1.6rem; border:1px solid var(--line); border-radius:6px; }
svg.gauge .bg { fill:var(--soft); } svg.gauge .g { fill:#2da44e; } svg.gauge .r { fill:#d4a72c; }
svg.gauge .w { fill:#8c959f; } svg.gauge .h { fill:#8250df; } svg.gauge .mark { fill:#1a1a1a; } svg.gauge.over .g { fill:#cf222e; }
.lg-g { background:#2da44e; } .lg-r { background:#d4a72c; } .lg-w { background:#8c959f; } .lg-h { background:#8250df; }
.badge.ok { color:var(--ok); } .badge.warn { color:var(--warn); } .badge.bad { color:var(--bad); }
.legend { display:flex; flex-wrap:wrap; gap:1rem; font-size:.9rem; margin-top:.4rem; }
.legend i { display:inline-block; width:.8rem; height:.8rem; border-radius:2px; margin-right:.3rem; vertical-align:-1px; }
svg.chart { width:100%; height:auto; max-height:16rem; }
svg.chart .axis { stroke:#8c959f; } svg.chart .tick { font-size:11px; fill:var(--muted); }
svg.chart .capacity { stroke:var(--bad); stroke-dasharray:6 4; } svg.chart .capacity-label { font-size:11px; fill:var(--bad); }
svg.chart .in-use { fill:none; stroke:#0b5cad; stroke-width:2; } svg.chart .waiting { fill:none; stroke:#d4a72c; stroke-width:2; stroke-dasharray:4 3; }
svg.chart .projection { stroke:#0b5cad; stroke-width:2; stroke-dasharray:2 4; } svg.chart .run-out { stroke:var(--bad); stroke-width:1; } svg.chart .run-out-label { font-size:11px; fill:var(--bad); }
dialog { border:1px solid var(--line); border-radius:8px; max-width:40rem; width:95%; }
dialog::backdrop { background: rgba(0,0,0,.35); }
.pager { display:flex; gap:1rem; align-items:center; margin-top:.5rem; }
@media (max-width: 40rem) { main { padding:.6rem; } th, td { padding:.3rem; } .hide-narrow { display:none; } main table { display:block; overflow-x:auto; } }
"#;

/// Progressive enhancement only: every page works without it.
pub const JS: &str = r#"
document.addEventListener('click', function (e) {
  var b = e.target.closest('[data-copy]');
  if (b) {
    var el = document.querySelector(b.getAttribute('data-copy'));
    if (el && navigator.clipboard) {
      navigator.clipboard.writeText((el.value || el.textContent).trim()).then(function () {
        var t = b.textContent; b.textContent = 'Copied'; setTimeout(function () { b.textContent = t; }, 1500);
      });
    }
  }
  var o = e.target.closest('[data-open]');
  if (o) { var d = document.querySelector(o.getAttribute('data-open')); if (d && d.showModal) { e.preventDefault(); d.showModal(); } }
  var c = e.target.closest('[data-close]');
  if (c) { var d2 = c.closest('dialog'); if (d2) { e.preventDefault(); d2.close(); } }
});
document.addEventListener('submit', function (e) {
  var m = e.target.getAttribute('data-confirm');
  if (m && !window.confirm(m)) { e.preventDefault(); }
});
// Every time is shown in the tenant's zone (as in the emails); a hint says how long ago, or how
// soon, by the viewer's clock: "(2 h ago)", "(in 58 min)".
function relative(ms) {
  var m = Math.round(Math.abs(ms) / 60000), s;
  if (m < 1) { return 'just now'; }
  if (m < 60) { s = m + ' min'; } else if (m < 2880) { s = Math.round(m / 60) + ' h'; } else { s = Math.round(m / 1440) + ' days'; }
  return ms < 0 ? s + ' ago' : 'in ' + s;
}
document.querySelectorAll('time[datetime]').forEach(function (t) {
  var d = Date.parse(t.getAttribute('datetime'));
  if (isNaN(d) || t.querySelector('.rel')) { return; }
  var r = document.createElement('span'); r.className = 'rel muted'; r.textContent = ' (' + relative(d - Date.now()) + ')';
  t.appendChild(r);
});
document.querySelectorAll('dialog[data-open-now]').forEach(function (d) { if (d.showModal) { d.showModal(); } });
"#;
