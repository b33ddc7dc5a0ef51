package apptest

// sioLoginJS is the login page's script: it logs in as the u of the query
// (kept in sessionStorage), and after the logout says "done".
const sioLoginJS = `(() => {
  const S = sessionStorage, root = document.getElementById("root"), f = document.getElementById("login");
  const err = document.getElementById("error"), step = S.getItem("sio.step");
  if (step === "logout") { S.removeItem("sio.step"); root.textContent = "done"; return; }
  if (err) { S.removeItem("sio.step"); root.textContent = "error: " + err.textContent; return; }
  const u = new URLSearchParams(location.search).get("u") || S.getItem("sio.u");
  if (!u) return;
  if (step === "login") { root.textContent = "error: the login page again"; return; }
  S.setItem("sio.u", u);
  S.setItem("sio.step", "login");
  setTimeout(() => { f.username.value = u; f.password.value = "pw-" + u; f.submit(); }, 100 + Math.random() * 150);
})();`

// sioChatJS is the chat page's script: a Socket.IO client written as
// socket.io-client 4 (engine.io-client 6) does it: the polling handshake,
// then at once the CONNECT by POST, the WebSocket probe and the next poll;
// 2probe, 3probe, the polling paused (the held poll answered by a noop),
// 5; then the chat: join the room of the welcome, three messages, each
// acked and broadcast back, an edit of the first, the socket's disconnect
// (41) and the WebSocket closed, and the logout form. Polling is done with
// fetch as engine.io-client's Fetch transport does it with withCredentials
// (credentials "include", POSTs as text/plain;charset=UTF-8), each request
// with the t= cache buster; the WebSocket has none.
const sioChatJS = `(() => {
  const S = sessionStorage, root = document.getElementById("root"), SEP = "\x1e";
  const status = t => { document.getElementById("status").textContent = t; };
  let leaving = false, ws = null;
  const fail = m => { if (leaving) return; leaving = true; S.removeItem("sio.step"); root.textContent = "error: " + m; if (ws) ws.close(); };
  const sleep = ms => new Promise(ok => setTimeout(ok, ms)), pause = () => sleep(100 + Math.random() * 150);
  const randomString = () => Date.now().toString(36).substring(3) + Math.random().toString(36).substring(2, 5);
  // Engine.IO
  let sid = "", transport = "polling", polling = false, writing = false, upgrading = false, onPaused = null, closed = false;
  const wbuf = [];
  const uri = (t, extra) => "/socket.io/?" + new URLSearchParams(Object.assign({ EIO: "4", transport: t }, sid ? { sid } : {}, extra || {}));
  const req = body => fetch(uri("polling", { t: randomString() }), body === undefined ? { credentials: "include" } :
    { method: "POST", body, headers: { "Content-Type": "text/plain;charset=UTF-8" }, credentials: "include" })
    .then(r => { if (!r.ok) throw new Error((body === undefined ? "poll: " : "post: ") + r.status); return r.text(); });
  const onPacket = p => {
    switch (p[0]) {
      case "1": closed = true; return fail("closed by the server");
      case "2": return write("3");
      case "4": return onMessage(p.slice(1));
      case "0": case "6": return;
      default: return fail("packet " + JSON.stringify(p));
    }
  };
  const paused = () => { if (onPaused && !polling && !writing) { const f = onPaused; onPaused = null; f(); } };
  const flush = () => {
    if (closed || upgrading || !wbuf.length) return;
    if (transport === "websocket") { wbuf.splice(0).forEach(p => ws.send(p)); return; }
    if (writing) return;
    writing = true;
    req(wbuf.splice(0).join(SEP)).then(() => { writing = false; paused(); flush(); }, e => fail(e.message));
  };
  const write = p => { wbuf.push(p); flush(); };
  const poll = () => {
    polling = true;
    req().then(body => {
      body.split(SEP).forEach(onPacket);
      polling = false;
      if (onPaused) paused(); else if (transport === "polling" && !closed && !leaving) poll();
    }, e => fail(e.message));
  };
  let upgraded;
  const upgrade = new Promise(ok => { upgraded = ok; });
  const probe = () => {
    const w = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + uri("websocket"));
    w.onopen = () => w.send("2probe");
    w.onerror = () => fail("WebSocket error");
    w.onclose = () => fail("the WebSocket closed");
    w.onmessage = ev => {
      if (ev.data !== "3probe") return fail("probe answered " + ev.data);
      upgrading = true;
      onPaused = () => {
        ws = w;
        transport = "websocket";
        w.send("5");
        upgrading = false;
        w.onmessage = ev => typeof ev.data === "string" ? onPacket(ev.data) : fail("a binary frame");
        status("connected");
        upgraded();
        flush();
      };
      paused();
    };
  };
  const open = async () => {
    const packets = (await req()).split(SEP);
    if (packets[0][0] !== "0") throw new Error("handshake " + packets[0]);
    const hs = JSON.parse(packets[0].slice(1));
    sid = hs.sid;
    write("40"); // the socket's CONNECT, as the engine opens
    if (hs.upgrades.includes("websocket")) probe();
    packets.slice(1).forEach(onPacket);
    poll();
  };
  // Socket.IO
  let connected = false, nextAck = 0;
  const acks = {}, sendBuffer = [], events = [], waiting = [];
  const onMessage = m => {
    let i = 1, id = "";
    while (i < m.length && m[i] >= "0" && m[i] <= "9") id += m[i++];
    const data = i < m.length ? JSON.parse(m.slice(i)) : undefined;
    switch (m[0]) {
      case "0": connected = true; sendBuffer.splice(0).forEach(write); return;
      case "1": return fail("disconnected by the server");
      case "2": events.push(data); for (let j = waiting.length - 1; j >= 0; j--) if (waiting[j]()) waiting.splice(j, 1); return;
      case "3": { const f = acks[id]; delete acks[id]; if (f) f(data[0]); return; }
      case "4": return fail("connect refused: " + (data && data.message));
    }
  };
  const emit = (event, arg) => new Promise((ok, ko) => {
    const id = nextAck++, t = setTimeout(() => ko(new Error("no ack to " + event)), 5000);
    acks[id] = v => { clearTimeout(t); ok(v); };
    const p = "42" + id + JSON.stringify([event, arg]);
    connected ? write(p) : sendBuffer.push(p);
  });
  const on = (event, pred) => new Promise((ok, ko) => {
    const t = setTimeout(() => ko(new Error("no " + event + " event")), 5000);
    const look = () => {
      const i = events.findIndex(d => d[0] === event && (!pred || pred(d[1])));
      if (i < 0) return false;
      clearTimeout(t);
      ok(events.splice(i, 1)[0][1]);
      return true;
    };
    if (!look()) waiting.push(look);
  });
  const check = (ok, what, v) => { if (!ok) throw new Error(what + ": " + JSON.stringify(v)); };
  const show = m => { const li = document.createElement("li"); li.id = "message-" + m.id; li.textContent = m.user + ": " + m.text; document.getElementById("messages").append(li); };
  const visit = async () => {
    const u = S.getItem("sio.u");
    await open();
    const hello = await on("welcome");
    check(hello.user === u && hello.room, "welcome", hello);
    await Promise.race([upgrade, sleep(5000).then(() => { throw new Error("no upgrade to WebSocket"); })]);
    await pause();
    const joined = await emit("join", hello.room);
    check(!joined.error && joined.room === hello.room, "join", joined);
    const ids = [];
    for (let i = 1; i <= 3; i++) {
      await pause();
      const text = "message " + i + " from " + u;
      const ack = await emit("message", { room: hello.room, text });
      check(ack && typeof ack.id === "number", "message ack", ack);
      const got = await on("message", m => m.id === ack.id);
      check(got.text === text && got.user === u && got.room === hello.room, "message", got);
      ids.push(ack.id);
      show(got);
    }
    await pause();
    const text = "message 1 from " + u + " (edited)";
    const edited = await emit("edit", { id: ids[0], text });
    check(!edited.error && edited.id === ids[0] && edited.text === text, "edit", edited);
    const ev = await on("edited", m => m.id === ids[0]);
    document.getElementById("message-" + ev.id).textContent = ev.user + ": " + ev.text;
    await pause();
    leaving = true;
    write("41"); // socket.disconnect(), and the manager closes the engine
    ws.close();
    status("disconnected");
    S.setItem("sio.step", "logout");
    await pause();
    document.getElementById("logout").submit();
  };
  const step = S.getItem("sio.step");
  if (step === "login" || step === null && new URLSearchParams(location.search).get("u")) {
    if (step === null) S.setItem("sio.u", new URLSearchParams(location.search).get("u"));
    S.setItem("sio.step", "chat");
    setTimeout(() => visit().catch(e => fail(e.message)), 50 + Math.random() * 100);
  }
})();`
