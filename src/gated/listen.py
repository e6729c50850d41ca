"""``gated listen RUN FILE.wav``: recognise a recording frame by frame, as if a microphone were feeding it.

The file is cut into pieces of ``--chunk-ms`` (10 ms: one frame's hop) and handed to a
``hearing.Listener`` one piece at a time. Printed: a line whenever the top answer changes
(the time in the audio, the answer, its probability), the final answer and when it
settled (the time after which it no longer changed), and the real-time factor: the
seconds spent computing features and model over the seconds of audio (below 1: faster
than the audio arrives). The final answer is the one ``gated predict`` gives for the file.
"""

from __future__ import annotations

from pathlib import Path


def add_arguments(parser) -> None:
    """Add this command's arguments to its argparse sub-parser (keep this module's imports light)."""
    parser.add_argument("run", type=Path, help="a run directory written by 'gated train speech --data DIR'")
    parser.add_argument("audio", type=Path, metavar="FILE.wav", help="a 16-bit PCM mono WAV file (any sample rate)")
    parser.add_argument("--chunk-ms", type=float, default=10.0,
                        help="milliseconds of audio handed over at a time, as a microphone's buffer (default 10)")
    parser.add_argument("--every-frame", action="store_true",
                        help="print the answer after every frame, not only when it changes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a frame is small work)")


def run(args) -> int:
    import torch

    from .data import audio
    from .hearing import changes, check_speech_run, listen
    from .runs import load_run

    if args.chunk_ms <= 0:
        raise ValueError(f"--chunk-ms must be above 0, got {args.chunk_ms:g}")
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    task, model, _ = load_run(args.run)
    check_speech_run(task, args.run)
    samples = audio.read_wav(args.audio)  # a bad file stops here, with its name and what is wrong
    rate = audio.wav_rate(args.audio)
    chunk = max(1, round(args.chunk_ms / 1000 * audio.SAMPLE_RATE))
    heard, listener = listen(task, model, samples, chunk)
    seconds = len(samples) / audio.SAMPLE_RATE
    names = task.label_names
    print(describe(args, model, listener, seconds, rate))
    for h in heard if args.every_frame else changes(heard):
        best = int(h.probabilities.argmax())
        print(f"  {h.seconds:6.2f} s  {names[best]}  p = {h.probabilities[best]:.3f}")
    final = heard[-1].probabilities
    best = int(final.argmax())
    settled = changes(heard)[-1].seconds
    print(f"answer: {names[best]} (p = {final[best]:.3f}), settled at {settled:.2f} s of {seconds:.2f} s")
    per_frame = listener.compute_seconds / len(heard) * 1000
    print(f"real-time factor {listener.compute_seconds / seconds:.3f}: {listener.compute_seconds * 1000:.1f} ms "
          f"of computing for {seconds:.2f} s of audio ({per_frame:.2f} ms a frame)")
    return 0


def describe(args, model, listener, seconds: float, rate: int) -> str:
    from .data import audio

    cell = model.config.cell.upper()
    how = ("streamed: one step a frame" if listener.streaming else
           "bidirectional: everything heard is read again at each frame; a unidirectional model "
           "(--no-bidirectional) streams at a fixed cost a frame")
    source = f"{rate} Hz, resampled to {audio.SAMPLE_RATE} Hz" if rate != audio.SAMPLE_RATE else f"{rate} Hz"
    return (f"{args.audio}: {seconds:.2f} s ({source}), {len(listener.frames)} frames of {listener.features.kind}; "
            f"{cell} of {args.run} ({how})")
