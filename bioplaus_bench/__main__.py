from bioplaus_bench.cli import main

main()
