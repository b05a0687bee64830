/* salbench leaderboard site: sort a table by a metric (best first in the metric's direction,
   again for the reverse), keep each row's detail with it, renumber "#", open and close details.
   Hand-written, no dependencies; works from file://. */
(function () {
  "use strict";

  function valueOf(body, metric) {
    var cell = body.querySelector('tr.main td[data-metric="' + metric + '"]');
    var text = cell ? cell.getAttribute("data-value") : "";
    return text === "" || text === null ? null : parseFloat(text);
  }

  function orderOf(body) {
    return parseInt(body.getAttribute("data-order"), 10);
  }

  function bestFirst(th) {
    return th.getAttribute("data-better") === "lower" ? "ascending" : "descending";
  }

  function sortBy(table, th, direction) {
    var metric = th.getAttribute("data-metric");
    var sign = direction === "ascending" ? 1 : -1;
    var bodies = Array.prototype.slice.call(table.tBodies);
    bodies.sort(function (a, b) {
      var va = valueOf(a, metric), vb = valueOf(b, metric);
      if (va === null || vb === null) {
        if (va !== vb) { return va === null ? 1 : -1; }  /* undefined values last, either way */
      } else if (va !== vb) {
        return sign * (va - vb);
      }
      return orderOf(a) - orderOf(b);
    });
    bodies.forEach(function (body) { table.appendChild(body); });
    Array.prototype.forEach.call(table.tHead.querySelectorAll("th[data-metric]"), function (h) {
      if (h === th) { h.setAttribute("aria-sort", direction); } else { h.removeAttribute("aria-sort"); }
    });
    if (table.getAttribute("data-ranked") === "yes") {
      bodies.forEach(function (body) {
        var pos = body.querySelector("tr.main td.pos");
        var cell = body.querySelector('tr.main td[data-metric="' + metric + '"]');
        if (pos) { pos.textContent = cell ? cell.getAttribute("data-rank") : ""; }
      });
    }
  }

  function setUp(table) {
    Array.prototype.forEach.call(table.tHead.querySelectorAll("th[data-metric] button"), function (button) {
      button.addEventListener("click", function () {
        var th = button.parentNode;
        var best = bestFirst(th);
        var now = th.getAttribute("aria-sort");
        sortBy(table, th, now === best ? (best === "ascending" ? "descending" : "ascending") : best);
      });
    });
    Array.prototype.forEach.call(table.querySelectorAll("button.toggle"), function (button) {
      var detail = document.getElementById(button.getAttribute("aria-controls"));
      if (!detail) { return; }
      detail.hidden = true;  /* without the script every detail stays visible */
      button.addEventListener("click", function () {
        var open = button.getAttribute("aria-expanded") !== "true";
        button.setAttribute("aria-expanded", open ? "true" : "false");
        button.textContent = open ? "▾" : "▸";
        detail.hidden = !open;
      });
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
