# The tutorial's socketserver clients ("socketserver", client.py), faithfully. See
# README.md for what changed.
# Usage: socketserver_client.py HOST PORT [connect|input]  (default: input)
#   connect  connects and closes
#   input    prints the greeting, sends one line read from stdin, closes
import socket
import sys
variant = sys.argv[3] if len(sys.argv) > 3 else 'input'  # changed: the lesson's two clients in one file
sk = socket.socket()
sk.connect((sys.argv[1], int(sys.argv[2])))  # changed: was ('127.0.0.1',9000)
if variant == 'input':
    print(sk.recv(1024))
    inp = input('>>>').encode('utf-8')
    sk.send(inp)
sk.close()
