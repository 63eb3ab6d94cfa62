// Watchfloor console: new alerts appear on the alerts page as they are recorded.
// Feed text is hostile: everything here is set with textContent, never as HTML.
"use strict";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function card(alert) {
  const article = el("article", "alert live-new sev-" + alert.severity);
  article.id = "alert-" + alert.id;
  article.dataset.id = alert.id;
  const header = el("header");
  header.append(el("span", "severity", alert.severity), " ", el("span", "watchlist", alert.watchlist),
    " ", el("time", null, alert.at), " ", el("span", "badge new", "new"));
  const title = el("h2");
  if (alert.story_id) {
    const link = el("a", null, alert.title);
    link.href = "/stories/" + encodeURIComponent(alert.story_id);
    title.append(link);
  } else {
    title.textContent = alert.title;
  }
  const footer = el("footer");
  footer.append(el("span", "source", alert.feed));
  article.append(header, title, el("p", "snippet", alert.snippet), footer);
  return article;
}

function live(section) {
  const status = document.getElementById("live-status");
  const source = new EventSource(section.dataset.live);
  source.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    if (document.getElementById("alert-" + alert.id)) return;
    const empty = section.querySelector(".empty");
    if (empty) empty.remove();
    section.insertBefore(card(alert), status ? status.nextSibling : section.firstChild);
    if (status) {
      status.hidden = false;
      status.textContent = "New alerts arrived while you were reading.";
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const section = document.getElementById("alerts");
  if (section && section.dataset.live) live(section);
});
