"""htct.evaluate"""
