// Times in the browser's own zone: the server writes UTC into <time datetime="...">.
document.addEventListener("DOMContentLoaded", function () {
  // sv-SE writes dates the ISO way (2026-12-01 19:41:10); the zone name is the browser's
  var fmt = new Intl.DateTimeFormat("sv-SE", {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) { el.title = el.textContent; el.textContent = fmt.format(when); }
  });
  // On a phone each table row is a card: label every cell with its column's name.
  document.querySelectorAll("table").forEach(function (table) {
    var names = Array.prototype.map.call(table.querySelectorAll("thead th"),
                                         function (th) { return th.textContent; });
    table.querySelectorAll("tbody tr").forEach(function (tr) {
      Array.prototype.forEach.call(tr.children, function (td, i) {
        if (names[i]) { td.setAttribute("data-label", names[i]); }
      });
    });
  });
});
