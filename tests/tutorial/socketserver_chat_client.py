# The tutorial's client that keeps sending ("连续发送"), faithfully but for its end: it
# stops after COUNT rounds instead of looping until killed. See README.md.
# Usage: socketserver_chat_client.py HOST PORT COUNT
import socket
import sys
sk = socket.socket()
sk.connect((sys.argv[1], int(sys.argv[2])))  # changed: was ('127.0.0.1',9000)
for _ in range(int(sys.argv[3])):  # changed: was while True
    print(sk.recv(1024))
    #inp = input('>>>').encode('utf-8')
    sk.send(b'hahaha')
sk.close()
