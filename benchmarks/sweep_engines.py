"""Where does the fused engine beat torch's own kernel? The measurements behind engine="auto".

For each module, batch size and hidden size, times the fused and the native
engine (forward, and forward+backward) in the same process and prints
native time / fused time: above 1, fused wins. Each kind's ``Kernels.wins_up_to``
(engines/fused_cells.py) records the largest batch * hidden_size where fused won.

Usage: python benchmarks/sweep_engines.py [--seconds 0.2] [--steps 50] [--split auto|on|off]
       python benchmarks/sweep_engines.py --against reference --modules PeepholeLSTM,LayerNormLSTM,...

``--against reference`` races the fused engine against the reference loop instead, for what
torch's kernels cannot run: the cells torch.nn lacks (``Kernels.wins_up_to`` of those kinds),
and, with ``--regularized``, LSTM, GRU and RNN with zoneout 0.1 in eval for the forward and
recurrent dropout 0.25 in training for forward+backward (``Kernels.regularized_wins_up_to``).

``--split on`` runs every plain LSTM layer of the fused engine on two threads
(``engines/persistent_lstm.py``) and ``off`` never; ``auto`` (the default) lets each call
decide, as the library does (``persistent_sync.split_pays``: two cores, torch allowed
two threads, and no other thread runnable at that moment). Run it on an idle machine.
"""

from __future__ import annotations

import argparse

import torch

import gated
from gated.bench import _forward, _forward_backward, compare
from gated.engines import persistent_sync


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--modules", default="LSTM,GRU,RNN")
    parser.add_argument("--batches", default="1,4,8,16,32")
    parser.add_argument("--hiddens", default="64,128,256")
    parser.add_argument("--against", choices=("native", "reference"), default="native",
                        help="the engine fused races: torch's kernel (default) or the reference loop")
    parser.add_argument("--regularized", action="store_true",
                        help="with zoneout (forward, eval) and recurrent dropout (forward+backward, training)")
    parser.add_argument("--split", choices=("auto", "on", "off"), default="auto",
                        help="the LSTM's two-thread kernel: as the library decides, always, or never")
    args = parser.parse_args()
    persistent_sync.FORCE = {"auto": None, "on": True, "off": False}[args.split]
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; T={args.steps}, I=H/2, split={args.split}"
          + (", zoneout 0.1 (forward, eval) | recurrent dropout 0.25 (forward+backward)" if args.regularized else ""))
    print(f"{args.against} time / fused time (above 1: fused faster), forward | forward+backward")
    for name in args.modules.split(","):
        for hidden in map(int, args.hiddens.split(",")):
            cells = []
            for batch in map(int, args.batches.split(",")):
                x = torch.randn(args.steps, batch, hidden // 2)
                ratios = []
                for make, options in ((_forward, {"zoneout": 0.1}), (_forward_backward, {"recurrent_dropout": 0.25})):
                    options = options if args.regularized else {}
                    fused = getattr(gated, name)(hidden // 2, hidden, engine="fused", **options)
                    other = getattr(gated, name)(hidden // 2, hidden, engine=args.against, **options)
                    other.load_state_dict(fused.state_dict())
                    if make is _forward and args.regularized:  # zoneout in eval: its expectation
                        fused.eval(), other.eval()
                    t_other, t_fused = compare(make(other, x), make(fused, x), args.seconds, 3)
                    ratios.append(t_other / t_fused)
                cells.append(f"B{batch}: {ratios[0]:.2f}|{ratios[1]:.2f}")
            print(f"{name:13} H{hidden:<4} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
