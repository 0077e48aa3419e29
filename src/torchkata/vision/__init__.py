"""Computer vision: CNNs on Fashion-MNIST (b04-06) and transfer learning from them (b04-10)."""
