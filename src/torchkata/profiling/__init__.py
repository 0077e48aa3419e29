"""Measuring where time goes: devices, timers, profilers."""
