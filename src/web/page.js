// peerwire's live swarm view (walkthrough §21).
//
// Twice a second the page asks /api/state for the latest snapshot of every member (one for
// `download` and `seed`, the whole swarm for `demo`) and redraws. Nothing here trusts the
// text it gets: peer data only ever goes into the page through textContent, never as HTML,
// so a client that calls itself "<script>" is shown, not run.
//
// A `demo --report` file is this same page with its data in a <script id="report-data">
// element: then nothing is polled and the pictures show the whole run.

"use strict";

const POLL_MS = 500;
const COLOURS = { h: "#2a9d3f", d: "#f2b705", m: "#dddddd" };
const LINE_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
// Up to this many members (the demo's summary keeps the same limit) every member is drawn in
// full. A larger swarm (`demo --peers 50`) gets the top uploaders above a scrolling matrix,
// folded member sections (a click opens one), and a legend for the first few lines only.
const FULL_VIEW_MEMBERS = 8;
const TOP_UPLOADERS = 8;

// What the page keeps between polls: the samples of pieces over time, the peer whose wire
// messages are shown, and (large swarms) the member sections opened by a click.
const seen = { samples: [], selected: null, polls: 0, open: new Set() };

// A new element with its text (never HTML) and attributes.
function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

function bytes(n) {
  if (n >= 1048576) return (n / 1048576).toFixed(1) + " MiB";
  if (n >= 1024) return (n / 1024).toFixed(0) + " KiB";
  return n + " B";
}

function rate(n) {
  return bytes(Math.round(n)) + "/s";
}

function yesNo(flag) {
  return el("td", flag ? "yes" : "no", { class: flag ? "yes" : "no" });
}

// A strip of small squares, one per piece: the colour says what we know of it.
function drawPieces(canvas, letters) {
  const n = letters.length;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (n === 0) return;
  const w = canvas.width / n;
  for (let i = 0; i < n; i++) {
    ctx.fillStyle = COLOURS[letters[i]] || COLOURS.m;
    ctx.fillRect(i * w, 0, Math.max(w - (w > 3 ? 1 : 0), 1), canvas.height);
  }
}

// A peer's bitfield ("1" and "0") as the same strip: green has, grey lacks.
function peerLetters(bits) {
  let out = "";
  for (const b of bits) out += b === "1" ? "h" : "m";
  return out;
}

// One grey square per piece: white when no peer has it, black when every peer does.
function availabilityCanvas(counts, peers, width, height) {
  const canvas = el("canvas", null, { width: width, height: height });
  const ctx = canvas.getContext("2d");
  const n = counts.length;
  const w = width / Math.max(n, 1);
  counts.forEach((count, i) => {
    const light = peers > 0 ? Math.round(95 - 75 * Math.min(count / peers, 1)) : 95;
    ctx.fillStyle = "hsl(0, 0%, " + light + "%)";
    ctx.fillRect(i * w, 0, Math.max(w - (w > 3 ? 1 : 0), 1), height);
  });
  return canvas;
}

function pieceCanvas(letters, width, height) {
  const canvas = el("canvas", null, { width: width, height: height });
  drawPieces(canvas, letters);
  return canvas;
}

// The choker's last round, in words: who holds the four regular slots and at what rate,
// who holds the optimistic one, who waits.
function chokerText(choker) {
  if (!choker) return "The choker has not run a round yet (every 10 s; a new interested peer is unchoked at once while a slot is free).";
  const by = choker.seeding ? "our upload rate to them (we seed)" : "their upload rate to us (tit-for-tat)";
  const regular = choker.regular.map((r) => r.addr + " at " + rate(r.rate)).join(", ") || "nobody";
  const optimistic = choker.optimistic || "nobody";
  const waiting = choker.choked.join(", ") || "nobody";
  return "Last choke round at " + choker.at.toFixed(0) + " s: regular slots, ranked by " + by +
    ": " + regular + ". Optimistic unchoke: " + optimistic + ". Interested but choked: " + waiting + ".";
}

function peerTable(member, index) {
  const table = el("table", null, { class: "peers" });
  const head = el("tr");
  for (const title of ["address", "client", "from", "transport", "we unchoke", "it is interested", "it unchokes us",
    "we are interested", "down", "up", "downloaded", "uploaded", "in flight", "pieces", "its pieces"]) {
    head.appendChild(el("th", title));
  }
  table.appendChild(head);
  for (const p of member.peers) {
    const row = el("tr", null, { class: "peer", "data-addr": p.addr, "data-member": index });
    if (seen.selected && seen.selected.member === index && seen.selected.addr === p.addr) {
      row.classList.add("selected");
    }
    row.appendChild(el("td", p.addr, { class: "text" }));
    row.appendChild(el("td", p.client, { class: "text client" }));
    row.appendChild(el("td", p.source, { class: "text" }));
    row.appendChild(el("td", p.transport, { class: "text" }));
    row.appendChild(yesNo(p.we_unchoke));
    row.appendChild(yesNo(p.it_is_interested));
    row.appendChild(yesNo(p.it_unchokes));
    row.appendChild(yesNo(p.we_are_interested));
    row.appendChild(el("td", rate(p.download_rate)));
    row.appendChild(el("td", rate(p.upload_rate)));
    row.appendChild(el("td", bytes(p.downloaded), { "data-bytes": p.downloaded }));
    row.appendChild(el("td", bytes(p.uploaded), { "data-bytes": p.uploaded }));
    row.appendChild(el("td", p.in_flight));
    row.appendChild(el("td", p.pieces_count));
    const cell = el("td");
    cell.appendChild(pieceCanvas(peerLetters(p.pieces), 200, 10));
    row.appendChild(cell);
    row.addEventListener("click", () => selectPeer(index, p.addr));
    table.appendChild(row);
  }
  return table;
}

function memberSection(member, index, folded) {
  const p = member.progress;
  const section = el("section", null, {
    class: "member", "data-name": member.name, "data-have": p.pieces_have,
    "data-total": p.pieces_total, "data-peers": member.peers.length,
  });
  const title = member.name + ": " + p.pieces_have + " of " + p.pieces_total +
    " pieces, " + bytes(p.downloaded) + " down, " + bytes(p.uploaded) + " up, " +
    member.peers.length + " peers" + (member.finished ? " (finished)" : "");
  if (folded && !seen.open.has(index)) {
    // Folded: the title and the piece strip only; a click unfolds it (and keeps it open
    // across redraws).
    const head = el("h2", "▸ " + title, { class: "fold" });
    head.addEventListener("click", () => { seen.open.add(index); redraw(); });
    section.appendChild(head);
    section.appendChild(pieceCanvas(member.pieces, 900, 8));
    return section;
  }
  const head = el("h2", (folded ? "▾ " : "") + title, folded ? { class: "fold" } : {});
  if (folded) head.addEventListener("click", () => { seen.open.delete(index); redraw(); });
  section.appendChild(head);
  const legend = el("p", "our pieces:", { class: "legend" });
  for (const [letter, word] of [["h", "have"], ["d", "downloading"], ["m", "missing"]]) {
    const swatch = el("span");
    swatch.style.background = COLOURS[letter];
    legend.appendChild(swatch);
    legend.appendChild(document.createTextNode(word));
  }
  section.appendChild(legend);
  section.appendChild(pieceCanvas(member.pieces, 900, 18));
  section.appendChild(el("p", "how many of its peers have each piece (darker: more; rarest first starts the lightest it lacks):", { class: "legend" }));
  section.appendChild(availabilityCanvas(member.availability, member.peers.length, 900, 10));
  section.appendChild(el("p", chokerText(member.choker), { class: "choker" }));
  section.appendChild(peerTable(member, index));
  return section;
}

// What member `i` counted as uploaded to member `j`'s peer id.
function sentTo(from, to) {
  let sent = 0;
  for (const t of from.traffic) if (t.peer_id === to.peer_id) sent += t.uploaded;
  return sent;
}

// Large swarms, above the matrix: the members that sent most, to how many, and to whom most.
function topUploaders(members) {
  const table = document.getElementById("top");
  table.replaceChildren();
  const big = members.length > FULL_VIEW_MEMBERS;
  document.getElementById("top-box").hidden = !big;
  if (!big) return;
  const head = el("tr");
  for (const title of ["member", "sent", "to how many", "most to"]) head.appendChild(el("th", title));
  table.appendChild(head);
  const rows = members.map((from, i) => {
    const to = members.map((m, j) => ({ name: m.name, sent: i === j ? 0 : sentTo(from, m) }));
    const total = to.reduce((sum, t) => sum + t.sent, 0);
    return { name: from.name, total: total, count: to.filter((t) => t.sent > 0).length,
      most: to.filter((t) => t.sent > 0).sort((a, b) => b.sent - a.sent).slice(0, 3) };
  });
  rows.sort((a, b) => b.total - a.total);
  for (const r of rows.slice(0, TOP_UPLOADERS)) {
    const row = el("tr", null, { class: "top" });
    row.appendChild(el("td", r.name, { class: "text" }));
    row.appendChild(el("td", bytes(r.total)));
    row.appendChild(el("td", r.count + " of " + (members.length - 1)));
    row.appendChild(el("td", r.most.map((t) => t.name + " " + bytes(t.sent)).join(", "), { class: "text" }));
    table.appendChild(row);
  }
}

// Row `from` sent column `to`: what `from` counted as uploaded to `to`'s peer id.
function matrix(members) {
  const table = document.getElementById("matrix");
  table.replaceChildren();
  const head = el("tr");
  head.appendChild(el("th", "sent ↓ to →"));
  for (const m of members) head.appendChild(el("th", m.name));
  table.appendChild(head);
  members.forEach((from, i) => {
    const row = el("tr");
    row.appendChild(el("th", from.name));
    members.forEach((to, j) => {
      if (i === j) {
        row.appendChild(el("td", "–"));
        return;
      }
      const sent = sentTo(from, to);
      row.appendChild(el("td", (sent / 1048576).toFixed(1) + " MiB",
        { "data-from": i, "data-to": j, "data-bytes": sent }));
    });
    table.appendChild(row);
  });
}

// One line per member: verified pieces against time.
function timeline(samples, names, total) {
  const canvas = document.getElementById("timeline");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (samples.length === 0 || total === 0) return;
  const end = Math.max(samples[samples.length - 1].t, 1);
  const x = (t) => 40 + (t / end) * (canvas.width - 160);
  const y = (n) => canvas.height - 20 - (n / total) * (canvas.height - 30);
  ctx.fillStyle = "#666";
  ctx.fillText("0 s", 40, canvas.height - 5);
  ctx.fillText(end.toFixed(0) + " s", canvas.width - 150, canvas.height - 5);
  ctx.fillText(total + " pieces", 0, 10);
  // The first few members in colour, with a legend; beyond them thin grey lines, so that 51
  // curves show the spread without 51 labels over each other.
  const legend = Math.min(names.length, FULL_VIEW_MEMBERS);
  names.forEach((name, m) => {
    if (m >= legend) {
      ctx.strokeStyle = "#bbbbbb";
      ctx.beginPath();
      samples.forEach((s, k) => {
        const at = [x(s.t), y(s.have[m] || 0)];
        if (k === 0) ctx.moveTo(at[0], at[1]); else ctx.lineTo(at[0], at[1]);
      });
      ctx.stroke();
      if (m === names.length - 1) {
        ctx.fillStyle = "#999";
        ctx.fillText("+ " + (names.length - legend) + " more (grey)", canvas.width - 110, 14 + 14 * legend);
      }
      return;
    }
    ctx.strokeStyle = LINE_COLOURS[m % LINE_COLOURS.length];
    ctx.beginPath();
    samples.forEach((s, k) => {
      const at = [x(s.t), y(s.have[m] || 0)];
      if (k === 0) ctx.moveTo(at[0], at[1]); else ctx.lineTo(at[0], at[1]);
    });
    ctx.stroke();
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillText(name, canvas.width - 110, 14 + 14 * m);
  });
}

// The report only: for each member and piece, when it arrived; dark early, light late.
function spread(gotAt, names) {
  const canvas = document.getElementById("spread");
  const ctx = canvas.getContext("2d");
  const rows = gotAt.length;
  let end = 1;
  for (const row of gotAt) for (const t of row) if (t !== null && t > end) end = t;
  canvas.height = 16 * rows;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  gotAt.forEach((row, m) => {
    const w = (canvas.width - 100) / Math.max(row.length, 1);
    ctx.fillStyle = "#333";
    ctx.fillText(names[m] || "", 0, 16 * m + 12);
    row.forEach((t, i) => {
      const light = t === null ? null : Math.round(25 + 60 * (t / end));
      ctx.fillStyle = light === null ? "#dddddd" : "hsl(140, 60%, " + light + "%)";
      ctx.fillRect(100 + i * w, 16 * m + 2, Math.max(w, 1), 12);
    });
  });
}

function render(state) {
  seen.state = state;
  const members = state.members;
  document.body.setAttribute("data-members", members.length);
  const box = document.getElementById("members");
  const folded = members.length > FULL_VIEW_MEMBERS;
  box.replaceChildren(...members.map((m, i) => memberSection(m, i, folded)));
  const swarm = members.length > 1;
  document.getElementById("swarm").hidden = !swarm;
  if (swarm) {
    topUploaders(members);
    matrix(members);
    const total = members[0].progress.pieces_total;
    timeline(seen.samples, members.map((m) => m.name), total);
  }
  const summary = state.summary || [];
  document.getElementById("summary-box").hidden = summary.length === 0;
  document.getElementById("summary").textContent = summary.join("\n");
  const finished = members.every((m) => m.finished);
  document.getElementById("status").textContent = (finished ? "Finished. " : "Live. ") +
    members.length + (members.length === 1 ? " session" : " members") + ", " +
    (members[0] ? members[0].elapsed.toFixed(1) : 0) + " s since the start.";
}

// Draws the last state again at once (a section folded or unfolded by a click).
function redraw() {
  if (seen.state) render(seen.state);
}

async function selectPeer(member, addr) {
  seen.selected = { member: member, addr: addr };
  document.getElementById("trace-box").hidden = false;
  document.getElementById("trace-peer").textContent = addr;
  await showTrace();
}

async function showTrace() {
  if (!seen.selected || reportData()) return;
  const query = "?member=" + seen.selected.member + "&peer=" + encodeURIComponent(seen.selected.addr);
  const answer = await fetch("/api/trace" + query);
  const lines = answer.ok ? await answer.json() : ["(no trace for this peer)"];
  document.getElementById("trace").textContent = lines.length ? lines.join("\n") : "(no message yet)";
}

async function poll() {
  try {
    const answer = await fetch("/api/state", { cache: "no-store" });
    if (answer.ok) {
      const state = await answer.json();
      // The curves since the start: peerwire samples every member twice a second, whether
      // or not a page is open.
      const history = await fetch("/api/history", { cache: "no-store" });
      if (history.ok) seen.samples = (await history.json()).samples || [];
      render(state);
      seen.polls += 1;
      document.body.setAttribute("data-polls", seen.polls);
      await showTrace();
    }
  } catch (error) {
    // The program has ended (or not started): say so, and keep trying.
    document.getElementById("status").textContent = "No answer from peerwire (" + error.message + "); retrying.";
  }
  setTimeout(poll, POLL_MS);
}

function reportData() {
  const node = document.getElementById("report-data");
  return node ? JSON.parse(node.textContent) : null;
}

function start() {
  const report = reportData();
  if (!report) {
    poll();
    return;
  }
  // The report: the run's recorded history instead of polls.
  seen.samples = report.history.samples;
  render(report.state);
  document.getElementById("status").textContent = "Report of a finished demo run.";
  const names = report.state.members.map((m) => m.name);
  document.getElementById("spread-box").hidden = false;
  spread(report.history.got_at, names);
  document.body.setAttribute("data-polls", 1);
}

start();
