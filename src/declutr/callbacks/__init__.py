"""Lightning callbacks: periodic evaluation, throughput."""
