"""htct.synth"""
