// The Vocalis WebRTC page: microphone up, agent voice down, events on a data channel.
//
// The token comes from this page's own URL (?token=...) and goes back in an
// Authorization header. Signalling is a single POST /webrtc/offer once ICE gathering
// is complete. For tests and debugging the page exposes window.vocalisPc (the
// RTCPeerConnection), window.vocalisStates (every agent state shown),
// window.vocalisEvents (every message received) and window.vocalisRender (shows
// a message as if it had arrived on the channel).
"use strict";

(() => {
  const token = new URLSearchParams(window.location.search).get("token") || "";
  const button = document.getElementById("toggle");
  const stateEl = document.getElementById("agent-state");
  const transcript = document.getElementById("transcript");
  const notice = document.getElementById("notice");
  const audioEl = document.getElementById("agent-audio");
  const userStateEl = document.getElementById("user-state");
  const levelEl = document.getElementById("mic-level");

  window.vocalisPc = null;
  window.vocalisStates = [];
  window.vocalisEvents = [];

  let pc = null;
  let channel = null;
  let mic = null;
  let meter = null; // {ctx, timer} while the microphone level is measured
  let userLine = null; // the user line being spoken (interim text shows in place)
  let userFinal = ""; // final transcripts of the current user turn
  let agentLine = null; // the agent line being spoken
  const agentLines = new Map(); // speech_id -> agent line, for the turn's latency
  const PENDING_MS = 20000; // an empty "recognising" bubble gives up after this

  const join = (a, b) => [a, b].filter((s) => s && s.trim()).join(" ").trim();
  const STATUS = { speaking: "speaking…", recognising: "recognising…", thinking: "thinking…" };

  function headers(extra) {
    return Object.assign({ Authorization: "Bearer " + token }, extra || {});
  }

  function say(text, isError) {
    notice.textContent = text || "";
    notice.classList.toggle("error", Boolean(isError));
  }

  function setState(state) {
    stateEl.dataset.agentState = state;
    stateEl.textContent = state;
    window.vocalisStates.push(state);
  }

  function setRunning(running) {
    button.dataset.running = String(running);
    button.textContent = running ? "Stop" : "Start";
  }

  // -- transcript lines ---------------------------------------------------------
  // Each side has a label, an icon, its own alignment and border, not just a colour.
  function addLine(role) {
    const li = document.createElement("li");
    li.dataset.role = role;
    if (role === "user" || role === "agent") {
      const who = document.createElement("div");
      who.className = "who";
      const icon = document.createElement("span");
      icon.className = "icon";
      icon.setAttribute("aria-hidden", "true");
      icon.textContent = role === "user" ? "●" : "◆"; // in every font, unlike emoji
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = role === "user" ? "You" : "Agent";
      who.append(icon, name);
      const text = document.createElement("p");
      text.className = "text";
      const status = document.createElement("span");
      status.className = "status";
      li.append(who, text, status);
      li.dataset.final = "false";
    }
    transcript.appendChild(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  const textOf = (li) => li.querySelector(".text");

  function setText(li, text) {
    textOf(li).textContent = text;
  }

  function setStatus(li, status) {
    if (!li) return;
    if (status) li.dataset.status = status;
    else delete li.dataset.status;
    li.querySelector(".status").textContent = STATUS[status] || "";
  }

  function dropIfEmpty(li) {
    if (li && !textOf(li).textContent.trim() && li.dataset.final !== "true") li.remove();
  }

  // -- the user's side ----------------------------------------------------------
  function ensureUserLine() {
    if (!userLine) {
      userLine = addLine("user");
      userFinal = "";
    }
    return userLine;
  }

  function onUserState(msg) {
    userStateEl.dataset.userState = msg.state;
    userStateEl.textContent = msg.state;
    if (msg.state === "speaking") {
      setStatus(ensureUserLine(), "speaking");
    } else if (msg.old_state === "speaking" && userLine) {
      // Voice activity ended: recognition runs now, often for a second or two.
      const line = userLine;
      setStatus(line, "recognising");
      setTimeout(() => {
        if (line === userLine && line.dataset.status === "recognising" && !textOf(line).textContent.trim()) {
          line.remove();
          userLine = null;
        }
      }, PENDING_MS);
    }
  }

  function onUserSpeech(msg) {
    if (!msg.text && !userLine) return;
    const line = ensureUserLine();
    if (msg.is_final) userFinal = join(userFinal, msg.text);
    setText(line, msg.is_final ? userFinal : join(userFinal, msg.text));
    line.dataset.final = "false";
    if (msg.is_final && line.dataset.status === "recognising") {
      if (userFinal) setStatus(line, null);
      else { line.remove(); userLine = null; } // nothing was recognised
    }
  }

  function onUserTurn(msg) {
    const line = userLine || addLine("user");
    if (msg.text) setText(line, msg.text);
    setStatus(line, null);
    line.dataset.final = "true";
    userLine = null;
    userFinal = "";
  }

  // -- the agent's side ---------------------------------------------------------
  function onAgentState(msg) {
    setState(msg.state);
    if (msg.state === "thinking") {
      if (!agentLine) agentLine = addLine("agent");
      setStatus(agentLine, "thinking");
    } else if (agentLine && agentLine.dataset.status === "thinking") {
      setStatus(agentLine, null);
      if (msg.state !== "speaking") { dropIfEmpty(agentLine); agentLine = null; }
    }
  }

  function onAgentSpeech(msg) {
    if (!msg.text) return;
    if (!agentLine) agentLine = addLine("agent");
    if (msg.speech_id) { agentLine.dataset.speechId = msg.speech_id; agentLines.set(msg.speech_id, agentLine); }
    setStatus(agentLine, null);
    setText(agentLine, join(textOf(agentLine).textContent, msg.text));
  }

  function onAgentTurn(msg) {
    if (!agentLine && !msg.text) return;
    const line = (msg.speech_id && agentLines.get(msg.speech_id)) || agentLine || addLine("agent");
    if (msg.text) setText(line, msg.text); // what the user actually heard
    setStatus(line, null);
    if (msg.speech_id) { line.dataset.speechId = msg.speech_id; agentLines.set(msg.speech_id, line); }
    if (msg.interrupted && line.dataset.interrupted !== "true") {
      line.dataset.interrupted = "true";
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "interrupted";
      line.querySelector(".who").append(badge);
    }
    line.dataset.final = "true";
    if (line === agentLine) agentLine = null;
  }

  // -- latency --------------------------------------------------------------------
  const STAGES = [
    ["stt", "stt_latency", "STT"],
    ["eou", "eou_delay", "end of turn"],
    ["llm", "llm_ttft", "LLM first token"],
    ["tts", "tts_ttfb", "TTS first audio"],
    ["e2e", "e2e_latency", "total"],
  ];

  const fmt = (seconds) => (seconds >= 1 ? `${seconds.toFixed(2)} s` : `${Math.round(seconds * 1000)} ms`);

  function onMetrics(msg) {
    const m = msg.metrics || {};
    if (![m.stt_latency, m.eou_delay, m.llm_ttft, m.tts_ttfb, msg.e2e_latency].some((v) => typeof v === "number")) return;
    const owner = m.speech_id && agentLines.get(m.speech_id);
    const box = document.createElement("div");
    box.dataset.role = "latency";
    box.dataset.turn = String(msg.turn);
    box.setAttribute("aria-label", `turn ${msg.turn} latency`);
    if (typeof msg.e2e_latency === "number") box.dataset.latencyMs = String(Math.round(msg.e2e_latency * 1000));
    for (const [key, field, title] of STAGES) {
      const value = field === "e2e_latency" ? msg.e2e_latency : m[field];
      if (typeof value !== "number") continue;
      const part = document.createElement("span");
      part.className = "stage";
      part.dataset.stage = key;
      part.title = title;
      part.textContent = `${key} ${fmt(value)}`;
      box.append(part);
    }
    if (owner) {
      owner.querySelector(".latency")?.remove();
      box.className = "latency";
      owner.append(box);
    } else {
      addLine("latency").append(box); // a reply with no line of its own
    }
  }

  function handle(msg) {
    switch (msg.type) {
      case "on_speech_in": return onUserSpeech(msg);
      case "user_turn": return onUserTurn(msg);
      case "user_state_changed": return onUserState(msg);
      case "on_speech_out": return onAgentSpeech(msg);
      case "agent_turn": return onAgentTurn(msg);
      case "agent_state_changed": return onAgentState(msg);
      case "metrics_collected": return onMetrics(msg);
      case "error": return say(`${msg.source || "error"}: ${msg.message || ""}`, true);
      case "close": return stop(false, `The session ended (${msg.reason || "closed"}).`);
      default: return undefined;
    }
  }
  // Renders a message as if it came on the channel (tests and demos of the page).
  window.vocalisRender = handle;

  // -- microphone level -----------------------------------------------------------
  // An AnalyserNode on the local stream; the meter shows its RMS on a -60..0 dBFS scale.
  function startMeter(stream, ctx) {
    const source = ctx.createMediaStreamSource(stream);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    const mute = ctx.createGain();
    mute.gain.value = 0; // keeps the graph pulled without playing the mic back
    source.connect(analyser).connect(mute).connect(ctx.destination);
    const samples = new Float32Array(analyser.fftSize);
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const rms = Math.sqrt(sum / samples.length);
      const level = rms > 0 ? Math.min(1, Math.max(0, (20 * Math.log10(rms) + 60) / 60)) : 0;
      showLevel(level);
    }, 50);
    if (ctx.state === "suspended") ctx.resume().catch(() => undefined);
    return { ctx, timer };
  }

  function showLevel(level) {
    levelEl.value = level;
    levelEl.dataset.level = level.toFixed(3);
    levelEl.textContent = `${Math.round(level * 100)}%`;
  }

  function stopMeter() {
    if (!meter) return;
    clearInterval(meter.timer);
    meter.ctx.close().catch(() => undefined);
    meter = null;
    showLevel(0);
  }

  // -- connection ----------------------------------------------------------------
  function iceGathered(conn, timeoutMs) {
    if (conn.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        conn.removeEventListener("icegatheringstatechange", check);
        resolve();
      };
      const check = () => { if (conn.iceGatheringState === "complete") done(); };
      const timer = setTimeout(done, timeoutMs); // send what we have
      conn.addEventListener("icegatheringstatechange", check);
    });
  }

  async function errorText(resp) {
    try {
      const body = await resp.clone().json();
      if (body && body.error) return body.error;
    } catch (_) { /* not JSON */ }
    return (await resp.text()) || `HTTP ${resp.status}`;
  }

  async function start() {
    button.disabled = true;
    // Made during the click, so the browser lets it run.
    const audioCtx = window.AudioContext ? new AudioContext() : null;
    say("Connecting…");
    try {
      if (!navigator.mediaDevices || !window.isSecureContext) {
        throw new Error("the microphone needs https (or http://localhost)");
      }
      mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      if (audioCtx) meter = startMeter(mic, audioCtx);
      const cfgResp = await fetch("webrtc/config", { headers: headers(), cache: "no-store" });
      if (!cfgResp.ok) throw new Error(await errorText(cfgResp));
      const cfg = await cfgResp.json();

      const conn = new RTCPeerConnection({ iceServers: cfg.iceServers || [] });
      pc = conn;
      window.vocalisPc = conn;
      mic.getTracks().forEach((track) => conn.addTrack(track, mic));
      channel = conn.createDataChannel("events");
      channel.onmessage = (event) => {
        let msg;
        try { msg = JSON.parse(event.data); } catch (_) { return; }
        window.vocalisEvents.push(msg);
        handle(msg);
      };
      channel.onclose = () => { if (pc === conn) stop(false, "The connection closed."); };
      conn.ontrack = (event) => {
        audioEl.srcObject = event.streams[0] || new MediaStream([event.track]);
        audioEl.play().catch(() => say("Click the page to hear the agent.", true));
      };
      conn.onconnectionstatechange = () => {
        const state = conn.connectionState;
        if (state === "connected") say("Connected: speak now.");
        if ((state === "failed" || state === "closed") && pc === conn) stop(false, `Connection ${state}.`);
      };

      await conn.setLocalDescription(await conn.createOffer());
      await iceGathered(conn, 3000);
      const resp = await fetch("webrtc/offer", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({ sdp: conn.localDescription.sdp, type: conn.localDescription.type }),
      });
      if (!resp.ok) throw new Error(await errorText(resp));
      if (pc !== conn) return; // stopped meanwhile
      await conn.setRemoteDescription(await resp.json());
      setRunning(true);
    } catch (err) {
      if (audioCtx && !meter) audioCtx.close().catch(() => undefined);
      stop(false);
      say(`Could not start: ${err.message || err}`, true);
    } finally {
      button.disabled = false;
    }
  }

  function stop(sayBye, why) {
    if (channel && channel.readyState === "open" && sayBye) {
      try { channel.send(JSON.stringify({ type: "bye" })); } catch (_) { /* closing anyway */ }
    }
    const conn = pc;
    pc = null;
    if (channel) channel.close();
    channel = null;
    if (conn) conn.close();
    if (mic) mic.getTracks().forEach((track) => track.stop());
    mic = null;
    stopMeter();
    audioEl.srcObject = null;
    setStatus(userLine, null);
    setStatus(agentLine, null);
    dropIfEmpty(userLine);
    dropIfEmpty(agentLine);
    userLine = null;
    agentLine = null;
    setRunning(false);
    if (why) say(why);
  }

  button.addEventListener("click", () => {
    if (button.dataset.running === "true" || pc) stop(true, "Stopped.");
    else start();
  });
  window.addEventListener("pagehide", () => { if (pc) stop(true); });
})();
