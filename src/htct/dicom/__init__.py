"""htct.dicom"""
